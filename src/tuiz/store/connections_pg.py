"""The PostgreSQL connection store: the seed's tables, triggers and functions do the bookkeeping."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from uuid import UUID

import asyncpg

from tuiz.store.connections import (
    ClosedParticipation,
    ConnectionStatus,
    NewConnection,
    OpenedConnection,
    Participation,
)

_OPEN = """
INSERT INTO public.websocket_connections
       (socket_id, device_id, user_id, ip_address, user_agent, metadata)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, reconnect_count, connected_at
"""

_HEARTBEAT = """
UPDATE public.websocket_connections SET last_heartbeat = now()
 WHERE socket_id = ANY($1::varchar[]) AND status = 'active'
"""

_CLOSE = """
WITH conn AS (
  UPDATE public.websocket_connections
     SET status = $2::public.connection_status, disconnected_at = now()
   WHERE socket_id = $1 AND status = 'active'
  RETURNING socket_id
)
UPDATE public.room_participants rp
   SET status = $2::public.connection_status, left_at = now()
 WHERE rp.socket_id = $1 AND rp.status = 'active'
RETURNING rp.game_id, rp.player_id, rp.device_id
"""

# One statement, one round trip: end the device's older participation in the game, then
# record the new one. The INSERT reads the UPDATE's output, so the UPDATE has finished first,
# and the unique "one active per (game, device)" check no longer sees the row it ended.
_JOIN = """
WITH ended AS (
  UPDATE public.room_participants SET status = 'disconnected', left_at = now()
   WHERE game_id = $1 AND device_id = $3 AND status = 'active'
  RETURNING 1
)
INSERT INTO public.room_participants
       (game_id, socket_id, device_id, player_id, user_id, role, metadata)
SELECT $1::uuid, $2::varchar, $3::text, $4::uuid, $5::uuid, $6::varchar, $7::jsonb
  FROM (SELECT count(*) FROM ended) AS done
"""

_LEAVE = """
UPDATE public.room_participants SET status = 'disconnected', left_at = now()
 WHERE socket_id = $1 AND game_id = $2 AND status = 'active'
RETURNING game_id, player_id, device_id
"""

# The same sweep as SQL mark_stale_connections(), with a sub-minute timeout for tests and
# small deployments (TUIZ_HEARTBEAT_TIMEOUT_MS).
_SWEEP = """
WITH stale AS (
  UPDATE public.websocket_connections wc
     SET status = 'timeout', disconnected_at = now()
   WHERE wc.status = 'active' AND wc.last_heartbeat < now() - $1::interval
  RETURNING wc.socket_id, wc.device_id
), left_rooms AS (
  UPDATE public.room_participants rp
     SET status = 'timeout', left_at = now()
    FROM stale
   WHERE rp.status = 'active' AND rp.socket_id = stale.socket_id
     AND rp.device_id = stale.device_id
  RETURNING rp.id
)
SELECT count(*) FROM stale
"""


class PgConnectionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def open(self, connection: NewConnection) -> OpenedConnection:
        row = await self._pool.fetchrow(
            _OPEN,
            connection.socket_id,
            connection.device_id,
            connection.user_id,
            connection.ip_address,
            connection.user_agent,
            connection.metadata,
        )
        assert row is not None
        return OpenedConnection(row["id"], row["reconnect_count"], row["connected_at"])

    async def heartbeat(self, socket_ids: Collection[str]) -> int:
        if not socket_ids:
            return 0
        status = await self._pool.execute(_HEARTBEAT, list(socket_ids))
        return int(status.rsplit(" ", 1)[1])

    async def close(self, socket_id: str, status: ConnectionStatus) -> list[ClosedParticipation]:
        rows = await self._pool.fetch(_CLOSE, socket_id, status.value)
        return [ClosedParticipation(r["game_id"], r["player_id"], r["device_id"]) for r in rows]

    async def join(self, participation: Participation) -> None:
        p = participation
        await self._pool.execute(
            _JOIN, p.game_id, p.socket_id, p.device_id, p.player_id, p.user_id, p.role, p.metadata
        )

    async def leave(self, socket_id: str, game_id: UUID) -> ClosedParticipation | None:
        row = await self._pool.fetchrow(_LEAVE, socket_id, game_id)
        if row is None:
            return None
        return ClosedParticipation(row["game_id"], row["player_id"], row["device_id"])

    async def active_sockets(self, game_id: UUID) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT socket_id FROM public.room_participants"
            " WHERE game_id = $1 AND status = 'active' ORDER BY joined_at",
            game_id,
        )
        return [r["socket_id"] for r in rows]

    async def active_count(self) -> int:
        count: int = await self._pool.fetchval("SELECT public.get_active_connections_count()")
        return count

    async def sweep_stale(self, silent_for: timedelta) -> int:
        count: int = await self._pool.fetchval(_SWEEP, silent_for)
        return count

    async def cleanup(self, retention_days: int) -> int:
        deleted: int = await self._pool.fetchval(
            "SELECT public.cleanup_old_websocket_connections(days_old => $1)", retention_days
        )
        return deleted
