"""The in-memory connection store (`TUIZ_STORE=memory`): development without a database.

It keeps the same rules as the PostgreSQL store (reconnect counting, one active participation
per device and game, sweeps) so the shared contract test holds for both.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from tuiz.store.connections import (
    ClosedParticipation,
    ConnectionStatus,
    NewConnection,
    OpenedConnection,
    Participation,
)

R = TypeVar("R")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Connection:
    spec: NewConnection
    opened: OpenedConnection
    last_heartbeat: datetime
    status: ConnectionStatus = ConnectionStatus.ACTIVE
    disconnected_at: datetime | None = None


@dataclass
class _Participant:
    spec: Participation
    joined_at: datetime
    status: ConnectionStatus = ConnectionStatus.ACTIVE
    left_at: datetime | None = None

    def closed(self) -> ClosedParticipation:
        return ClosedParticipation(self.spec.game_id, self.spec.player_id, self.spec.device_id)


@dataclass
class _Device:
    total_connections: int = 0
    total_reconnections: int = 0


@dataclass
class MemoryConnectionStore:
    connections: list[_Connection] = field(default_factory=list)
    participants: list[_Participant] = field(default_factory=list)
    devices: dict[str, _Device] = field(default_factory=dict)

    def _active(self, socket_id: str) -> list[_Connection]:
        return [
            c
            for c in self.connections
            if c.spec.socket_id == socket_id and c.status is ConnectionStatus.ACTIVE
        ]

    async def open(self, connection: NewConnection) -> OpenedConnection:
        device = self.devices.setdefault(connection.device_id, _Device())
        reconnect = device.total_reconnections + 1 if device.total_connections else 0
        device.total_connections += 1
        device.total_reconnections += 1 if reconnect else 0
        now = _now()
        opened = OpenedConnection(uuid.uuid4(), reconnect, now)
        self.connections.append(_Connection(connection, opened, now))
        return opened

    async def heartbeat(self, socket_ids: Collection[str]) -> int:
        wanted, now, count = set(socket_ids), _now(), 0
        for c in self.connections:
            if c.spec.socket_id in wanted and c.status is ConnectionStatus.ACTIVE:
                c.last_heartbeat = now
                count += 1
        return count

    def _end(self, p: _Participant, status: ConnectionStatus, now: datetime) -> None:
        p.status, p.left_at = status, now

    async def close(self, socket_id: str, status: ConnectionStatus) -> list[ClosedParticipation]:
        now = _now()
        for c in self._active(socket_id):
            c.status, c.disconnected_at = status, now
        ended = []
        for p in self.participants:
            if p.spec.socket_id == socket_id and p.status is ConnectionStatus.ACTIVE:
                self._end(p, status, now)
                ended.append(p.closed())
        return ended

    async def join(self, participation: Participation) -> None:
        now = _now()
        for p in self.participants:
            if (
                p.spec.game_id == participation.game_id
                and p.spec.device_id == participation.device_id
                and p.status is ConnectionStatus.ACTIVE
            ):
                self._end(p, ConnectionStatus.DISCONNECTED, now)
        self.participants.append(_Participant(replace(participation), now))

    async def leave(self, socket_id: str, game_id: UUID) -> ClosedParticipation | None:
        for p in self.participants:
            if (
                p.spec.socket_id == socket_id
                and p.spec.game_id == game_id
                and p.status is ConnectionStatus.ACTIVE
            ):
                self._end(p, ConnectionStatus.DISCONNECTED, _now())
                return p.closed()
        return None

    async def track(self, socket_id: str, write: asyncio.Future[R]) -> R:
        return await write  # every write here is done before the next event is handled

    async def active_sockets(self, game_id: UUID) -> list[str]:
        return [
            p.spec.socket_id
            for p in self.participants
            if p.spec.game_id == game_id and p.status is ConnectionStatus.ACTIVE
        ]

    async def active_count(self) -> int:
        return sum(1 for c in self.connections if c.status is ConnectionStatus.ACTIVE)

    async def sweep_stale(self, silent_for: timedelta) -> int:
        now = _now()
        stale = [
            c
            for c in self.connections
            if c.status is ConnectionStatus.ACTIVE and c.last_heartbeat < now - silent_for
        ]
        for c in stale:
            c.status, c.disconnected_at = ConnectionStatus.TIMEOUT, now
            for p in self.participants:
                if (
                    p.spec.socket_id == c.spec.socket_id
                    and p.spec.device_id == c.spec.device_id
                    and p.status is ConnectionStatus.ACTIVE
                ):
                    self._end(p, ConnectionStatus.TIMEOUT, now)
        return len(stale)

    async def cleanup(self, retention_days: int) -> int:
        cutoff = _now() - timedelta(days=retention_days)
        keep = [
            c
            for c in self.connections
            if c.status is ConnectionStatus.ACTIVE or c.opened.connected_at >= cutoff
        ]
        removed = len(self.connections) - len(keep)
        self.connections = keep
        return removed
