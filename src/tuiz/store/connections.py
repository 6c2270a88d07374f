"""The connection store: where connections, heartbeats and room participations are recorded.

One interface, two implementations side by side (`connections_pg.py` for production,
`connections_memory.py` for development without a database), both held to one contract test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar
from uuid import UUID

R = TypeVar("R")


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    DISCONNECTED = "disconnected"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class NewConnection:
    socket_id: str
    device_id: str
    user_id: UUID | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenedConnection:
    id: UUID
    reconnect_count: int
    connected_at: datetime


@dataclass(frozen=True)
class Participation:
    """A socket in a game's room, as `room_participants` records it."""

    game_id: UUID
    socket_id: str
    device_id: str
    player_id: UUID
    role: str
    user_id: UUID | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClosedParticipation:
    game_id: UUID
    player_id: UUID
    device_id: str


class ConnectionStore(Protocol):
    async def open(self, connection: NewConnection) -> OpenedConnection:
        """Record a new connection; the device session and reconnect count follow from it."""

    async def heartbeat(self, socket_ids: Collection[str]) -> int:
        """Refresh `last_heartbeat` of these active connections in one write; returns how many."""

    async def close(self, socket_id: str, status: ConnectionStatus) -> list[ClosedParticipation]:
        """End a connection and its active participations; returns the participations ended."""

    async def join(self, participation: Participation) -> None:
        """Make this the device's one active participation in the game (ends an older one)."""

    async def leave(self, socket_id: str, game_id: UUID) -> ClosedParticipation | None:
        """End the socket's active participation in the game, if it has one."""

    async def track(self, socket_id: str, write: asyncio.Future[R]) -> R:
        """Await a write of the socket's rows made elsewhere (a seat's participation, written
        with the seat): its close and leave wait for it as for the socket's own."""

    async def active_sockets(self, game_id: UUID) -> list[str]:
        """Socket ids with an active participation in the game, on any process."""

    async def active_count(self) -> int:
        """Active connections on every process."""

    async def sweep_stale(self, silent_for: timedelta) -> int:
        """Time out active connections silent for longer than `silent_for`, participations too."""

    async def cleanup(self, retention_days: int) -> int:
        """Delete ended connections older than `retention_days`; returns how many."""
