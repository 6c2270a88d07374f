"""The PostgreSQL connection store: the seed's tables, triggers and functions do the bookkeeping.

Connections and participations are group-committed (`store/batch.py`): the rows of every
socket that registers or joins while a batch is in flight go in the next batch's one
statement, and each caller still returns only once its own row has committed. A device's
rows never share a batch, so its session counters and its one active participation per game
are decided in order, as with a statement per row. A socket's close or leave first waits
for its own queued open, join or enter, so it never runs ahead of the row it ends.

`enter` is a `room:join` in one round trip: the seat lookup (`store/rooms.py`) and, for a
seated device, the participation write, in one statement (two round trips in a row took
12–14 ms of a join's 14 ms at p50 on the shared bench machine; bench/README.md 2026-12-07b).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import orjson

from tuiz.store.batch import GroupCommit
from tuiz.store.connections import (
    ClosedParticipation,
    ConnectionStatus,
    NewConnection,
    OpenedConnection,
    Participation,
)
from tuiz.store.ids import new_ids
from tuiz.store.rooms import SEAT_OF_EACH

R = TypeVar("R")


@dataclass(frozen=True)
class Seat:
    player_id: UUID | None
    is_host: bool


# Rows in input order; ids are made here so each caller finds its own row in RETURNING.
_OPEN = """
INSERT INTO public.websocket_connections
       (id, socket_id, device_id, user_id, ip_address, user_agent, metadata)
SELECT id, socket_id, device_id, user_id, ip_address, user_agent, metadata::jsonb
  FROM unnest($1::uuid[], $2::varchar[], $3::text[], $4::uuid[], $5::varchar[], $6::text[],
              $7::text[]) AS b(id, socket_id, device_id, user_id, ip_address, user_agent, metadata)
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

# Ends the active participation of each (game_id, device_id) in `rows`: an index lookup per
# row, driven from the batch. Joined the plain way (UPDATE ... FROM rows), the planner may
# estimate the active rows from the table's size (no statistics yet, or none on status) and
# hash them against the batch, a pass over every active participation per batch of joiners
# (7,927 rows read for 8 at 5,000 players). The LIMIT keeps each lookup a subquery the
# planner cannot turn around.
END_ACTIVE = """  UPDATE public.room_participants SET status = 'disconnected', left_at = now()
   WHERE id = ANY (ARRAY(
         SELECT r.id FROM {rows}
           CROSS JOIN LATERAL (
                 SELECT r.id FROM public.room_participants r
                  WHERE r.game_id = b.game_id AND r.device_id = b.device_id
                    AND r.status = 'active'
                  LIMIT 1) r))
  RETURNING 1"""

# One statement, one round trip for a batch: end each device's older participation in its
# game, then record the new ones. The INSERT reads the UPDATE's output, so the UPDATE has
# finished first, and the unique "one active per (game, device)" check no longer sees the rows
# it ended (a batch holds at most one row per game and device).
_JOIN = (
    """
WITH b AS (
  SELECT * FROM unnest($1::uuid[], $2::varchar[], $3::text[], $4::uuid[], $5::uuid[],
                       $6::varchar[], $7::text[], $8::uuid[])
           AS b(game_id, socket_id, device_id, player_id, user_id, role, metadata, id)
), ended AS (
"""
    + END_ACTIVE.format(rows="b")
    + """
)
INSERT INTO public.room_participants
       (id, game_id, socket_id, device_id, player_id, user_id, role, metadata)
SELECT b.id, b.game_id, b.socket_id, b.device_id, b.player_id, b.user_id, b.role,
       b.metadata::jsonb
  FROM b, (SELECT count(*) FROM ended) AS done
"""
)

# A room:join in one round trip: the device's seat in the game (an index lookup per request),
# then, for a seated device only, the same write as _JOIN. `i` is the request's position; a
# game that does not exist gives found = false, a device without a seat a NULL player_id
# (a spectator: no row). A batch holds at most one request per game and device.
_ENTER = (
    """
WITH b AS (
  SELECT * FROM unnest($1::uuid[], $2::varchar[], $3::text[], $4::uuid[], $5::uuid[])
           WITH ORDINALITY AS b(game_id, socket_id, device_id, user_id, id, i)
), seat AS (
  SELECT b.*, g.id IS NOT NULL AS found, p.id AS player_id, p.is_host
    FROM b
"""
    + SEAT_OF_EACH
    + """
), ended AS (
"""
    + END_ACTIVE.format(rows="(SELECT * FROM seat WHERE player_id IS NOT NULL) b")
    + """
), written AS (
  INSERT INTO public.room_participants
         (id, game_id, socket_id, device_id, player_id, user_id, role)
  SELECT s.id, s.game_id, s.socket_id, s.device_id, s.player_id, s.user_id,
         CASE WHEN s.is_host THEN 'host' ELSE 'player' END
    FROM seat s, (SELECT count(*) FROM ended) AS done
   WHERE s.player_id IS NOT NULL
  RETURNING 1
)
SELECT s.i, s.found, s.player_id, s.is_host, (SELECT count(*) FROM written) AS written
  FROM seat s
"""
)

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
        self._opens: GroupCommit[NewConnection, OpenedConnection] = GroupCommit(
            self._write_opens, key=lambda c: c.device_id
        )
        self._joins: GroupCommit[Participation, None] = GroupCommit(
            self._write_joins, key=lambda p: (p.game_id, p.device_id), in_flight=2
        )
        self._enters: GroupCommit[tuple[UUID, str, str, UUID | None], Seat | None] = GroupCommit(
            self._write_enters, key=lambda e: (e[0], e[2]), in_flight=2
        )
        self._pending: dict[str, set[asyncio.Future[Any]]] = {}  # socket id -> queued rows

    async def _write_opens(self, batch: Sequence[NewConnection]) -> list[OpenedConnection]:
        ids = new_ids(len(batch))
        rows = await self._pool.fetch(
            _OPEN,
            ids,
            [c.socket_id for c in batch],
            [c.device_id for c in batch],
            [c.user_id for c in batch],
            [c.ip_address for c in batch],
            [c.user_agent for c in batch],
            [orjson.dumps(c.metadata).decode() for c in batch],
        )
        by_id: dict[UUID, tuple[int, datetime]] = {r[0]: (r[1], r[2]) for r in rows}
        return [OpenedConnection(i, *by_id[i]) for i in ids]

    async def _write_joins(self, batch: Sequence[Participation]) -> list[None]:
        await self._pool.execute(
            _JOIN,
            [p.game_id for p in batch],
            [p.socket_id for p in batch],
            [p.device_id for p in batch],
            [p.player_id for p in batch],
            [p.user_id for p in batch],
            [p.role for p in batch],
            [orjson.dumps(p.metadata).decode() for p in batch],
            new_ids(len(batch)),
        )
        return [None] * len(batch)

    async def _write_enters(
        self, batch: Sequence[tuple[UUID, str, str, UUID | None]]
    ) -> list[Seat | None]:
        rows = await self._pool.fetch(
            _ENTER,
            [e[0] for e in batch],
            [e[1] for e in batch],
            [e[2] for e in batch],
            [e[3] for e in batch],
            new_ids(len(batch)),
        )
        found: dict[int, Seat | None] = {}
        for r in rows:
            found[r["i"]] = Seat(r["player_id"], bool(r["is_host"])) if r["found"] else None
        return [found.get(i + 1) for i in range(len(batch))]

    async def enter(
        self, game_id: UUID, socket_id: str, device_id: str, user_id: UUID | None
    ) -> Seat | None:
        """The device's seat in the game (player_id None: no seat), its participation written
        when it has one; None when there is no such game. A lookup and a `join` in one round
        trip."""
        return await self.track(
            socket_id, self._enters.enqueue((game_id, socket_id, device_id, user_id))
        )

    async def track(self, socket_id: str, future: asyncio.Future[R]) -> R:
        """Await a queued row (this store's, or one written with a seat), keeping it visible
        to the socket's close and leave."""
        pending = self._pending.setdefault(socket_id, set())
        pending.add(future)
        try:
            return await asyncio.shield(future)
        finally:
            pending.discard(future)
            if not pending:
                self._pending.pop(socket_id, None)

    async def _settled(self, socket_id: str) -> None:
        """Wait until the socket's queued opens and joins are written (or failed)."""
        pending = self._pending.get(socket_id)
        if pending:
            await asyncio.wait(set(pending))

    async def open(self, connection: NewConnection) -> OpenedConnection:
        return await self.track(connection.socket_id, self._opens.enqueue(connection))

    async def heartbeat(self, socket_ids: Collection[str]) -> int:
        if not socket_ids:
            return 0
        status = await self._pool.execute(_HEARTBEAT, list(socket_ids))
        return int(status.rsplit(" ", 1)[1])

    async def close(self, socket_id: str, status: ConnectionStatus) -> list[ClosedParticipation]:
        await self._settled(socket_id)
        rows = await self._pool.fetch(_CLOSE, socket_id, status.value)
        return [ClosedParticipation(r["game_id"], r["player_id"], r["device_id"]) for r in rows]

    async def join(self, participation: Participation) -> None:
        await self.track(participation.socket_id, self._joins.enqueue(participation))

    async def leave(self, socket_id: str, game_id: UUID) -> ClosedParticipation | None:
        await self._settled(socket_id)
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
