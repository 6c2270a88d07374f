"""Games, seats and their projections in the game-system tables.

The event log is the game's source of truth; `games`, `game_flows`, `players` and
`game_player_data` are projections of the engine's state kept for REST, reports and the TUIZ
client, written in one transaction at phase changes (never per answer).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from tuiz.errors import ErrorCode, TuizError
from tuiz.store.connections_pg import END_ACTIVE
from tuiz.store.db import Conn
from tuiz.store.ids import new_ids

PIN_ATTEMPTS = 50


@dataclass(frozen=True)
class GameRecord:
    id: uuid.UUID
    pin: str
    quiz_set_id: uuid.UUID | None
    user_id: uuid.UUID | None
    status: str
    locked: bool
    settings: dict[str, Any]
    created_at: datetime
    host_player_id: uuid.UUID | None
    host_device_id: str | None


_GAME = """
SELECT g.id, g.game_code, g.quiz_set_id, g.user_id, g.status::text AS status, g.locked,
       g.game_settings, g.created_at, h.id AS host_player_id, h.device_id AS host_device_id
  FROM public.games g
  LEFT JOIN public.players h ON h.game_id = g.id AND h.is_host AND h.removed_at IS NULL
"""


def _record(row: asyncpg.Record) -> GameRecord:
    return GameRecord(
        id=row["id"],
        pin=row["game_code"],
        quiz_set_id=row["quiz_set_id"],
        user_id=row["user_id"],
        status=row["status"],
        locked=row["locked"],
        settings=row["game_settings"],
        created_at=row["created_at"],
        host_player_id=row["host_player_id"],
        host_device_id=row["host_device_id"],
    )


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


# Seats (players, game_player_data) and, for a seat taken from a socket, its participation:
# the device's older active participation in the game ended first (`END_ACTIVE`), as the
# connection store's own join does. A participation that cannot be written here is left to
# the connection store (the caller learns which were): another socket of the device joining
# at the same moment (the one-active-per-device index), a signed-in user deleted since (no
# user, as ON DELETE SET NULL would leave it). One such socket never fails the others' seats.
_ADD_PLAYERS = (
    """
WITH b AS (
  SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::varchar[], $6::uuid[],
                       $7::uuid[])
           AS b(id, device_id, name, socket_id, user_id, participation_id)
), p AS (
  INSERT INTO public.players (id, game_id, device_id, player_name)
  SELECT b.id, $1, b.device_id, b.name FROM b
  RETURNING id, device_id
), d AS (
  INSERT INTO public.game_player_data (player_id, player_device_id, game_id)
  SELECT p.id, p.device_id, $1 FROM p
), ended AS (
"""
    + END_ACTIVE.format(
        rows="(SELECT $1::uuid AS game_id, device_id FROM b WHERE socket_id IS NOT NULL) b"
    )
    + """
)
INSERT INTO public.room_participants
       (id, game_id, socket_id, device_id, player_id, user_id, role)
SELECT b.participation_id, $1, b.socket_id, b.device_id, b.id, u.id, 'player'
  FROM b
  CROSS JOIN (SELECT count(*) FROM ended) AS done
  LEFT JOIN auth.users u ON u.id = b.user_id
 WHERE b.socket_id IS NOT NULL
ON CONFLICT (game_id, device_id) WHERE status = 'active' DO NOTHING
RETURNING player_id
"""
)


class GameRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self,
        *,
        quiz_set_id: uuid.UUID | None,
        total_questions: int,
        settings: dict[str, Any],
        user_id: uuid.UUID | None,
        host_device_id: str,
        host_name: str,
    ) -> GameRecord:
        """A waiting game with a fresh 6-digit PIN, its host seat and its flow row."""
        async with self._pool.acquire() as conn:
            for _ in range(PIN_ATTEMPTS):
                pin = f"{secrets.randbelow(900_000) + 100_000}"
                try:
                    async with conn.transaction():
                        game_id = await conn.fetchval(
                            "INSERT INTO public.games (quiz_set_id, user_id, game_code,"
                            " game_settings) VALUES ($1, $2, $3, $4) RETURNING id",
                            quiz_set_id,
                            user_id,
                            pin,
                            settings,
                        )
                        await conn.execute(
                            "INSERT INTO public.players (game_id, device_id, player_name,"
                            " is_host, is_logged_in) VALUES ($1, $2, $3, true, $4)",
                            game_id,
                            host_device_id,
                            host_name,
                            user_id is not None,
                        )
                        await conn.execute(
                            "INSERT INTO public.game_flows (game_id, quiz_set_id,"
                            " total_questions) VALUES ($1, $2, $3)",
                            game_id,
                            quiz_set_id,
                            total_questions,
                        )
                except asyncpg.UniqueViolationError as exc:
                    if "game_code" in str(exc.constraint_name or ""):
                        continue  # PIN taken by a live game: draw again
                    raise
                record = await self.get(game_id, conn=conn)
                assert record is not None
                return record
        raise TuizError(ErrorCode.UNAVAILABLE, "no free game PIN; try again")

    async def get(self, game_id: uuid.UUID, *, conn: Conn | None = None) -> GameRecord | None:
        row = await (conn or self._pool).fetchrow(_GAME + " WHERE g.id = $1", game_id)
        return _record(row) if row else None

    async def by_pin(self, pin: str) -> GameRecord | None:
        """The live (not finished) game with this PIN."""
        row = await self._pool.fetchrow(
            _GAME + " WHERE g.game_code = $1 AND g.status <> 'finished'", pin
        )
        return _record(row) if row else None

    async def live_game_ids(self) -> list[uuid.UUID]:
        """Games a restarted server must take up again (crash recovery)."""
        rows = await self._pool.fetch(
            "SELECT id FROM public.games WHERE status IN ('active', 'paused')"
        )
        return [r["id"] for r in rows]

    async def stale_lobbies(self, ttl_ms: int, owner: str, limit: int = 500) -> list[uuid.UUID]:
        """Games still waiting `ttl_ms` after creation that `owner` may end: unowned, its own,
        lapsed, or held by a process on the same host (which may have died)."""
        rows = await self._pool.fetch(
            """
            SELECT g.id FROM public.games g
              LEFT JOIN public.game_owners o ON o.game_id = g.id
             WHERE g.status = 'waiting'
               AND g.created_at < now() - make_interval(secs => $1 / 1000.0)
               AND (o.owner IS NULL OR o.owner = $2 OR o.expires_at < now()
                    OR split_part(o.owner, ':', 1) = split_part($2, ':', 1))
             ORDER BY g.created_at LIMIT $3
            """,
            ttl_ms,
            owner,
            limit,
        )
        return [r["id"] for r in rows]

    async def discard(self, game_id: uuid.UUID) -> None:
        """Undo a game whose log never started: deleted, or (when some of its log was written
        after all, and the log is append-only) finished; either way its PIN is free."""
        try:
            await self._pool.execute("DELETE FROM public.games WHERE id = $1", game_id)
        except asyncpg.PostgresError:
            await self._pool.execute(
                "UPDATE public.games SET status = 'finished', ended_at = now()"
                " WHERE id = $1 AND status <> 'finished'",
                game_id,
            )

    async def add_players(self, game_id: uuid.UUID, seats: Sequence[NewSeat]) -> set[str]:
        """Seats, their score rows and their sockets' participations, in one statement (one
        commit for a burst of joins); the unique indexes on the seats are the last word on
        races: any conflict writes none of them. Returns the seats whose participation was
        written."""
        try:
            rows = await self._pool.fetch(
                _ADD_PLAYERS,
                game_id,
                [s.player_id for s in seats],
                [s.device_id for s in seats],
                [s.name for s in seats],
                [s.socket_id for s in seats],
                [s.user_id for s in seats],
                new_ids(len(seats)),
            )
        except asyncpg.UniqueViolationError as exc:
            if "name" in str(exc.constraint_name or ""):
                names = ", ".join(repr(s.name) for s in seats)
                raise TuizError(ErrorCode.CONFLICT, f"nickname {names} is taken") from None
            raise TuizError(ErrorCode.CONFLICT, "this device already has a seat") from None
        return {str(r["player_id"]) for r in rows}

    async def current_seats(self, game_id: uuid.UUID, device_id: str, name: str) -> list[str]:
        """Ids of the current seats that hold this device or this nickname (case-insensitive):
        what a refused `add_player` collided with."""
        rows = await self._pool.fetch(
            "SELECT id FROM public.players WHERE game_id = $1 AND removed_at IS NULL"
            " AND (device_id = $2 OR lower(player_name) = lower($3))",
            game_id,
            device_id,
            name,
        )
        return [str(r["id"]) for r in rows]

    async def drop_seats(self, game_id: uuid.UUID, player_ids: list[str]) -> None:
        """Delete seats the game never took: rows whose join was cut off before its log
        event was written. They have no answers, scores or events of their own."""
        await self._pool.execute(
            "DELETE FROM public.players WHERE game_id = $1 AND id = ANY($2::uuid[])",
            game_id,
            player_ids,
        )

    async def leased_live_games(self) -> list[tuple[uuid.UUID, str, bool]]:
        """(game, owner, lease lapsed) of every running game and every lobby someone holds
        (a running game nobody holds: owner "", lapsed): failover takes these up."""
        rows = await self._pool.fetch(
            """
            SELECT g.id, coalesce(o.owner, '') AS owner,
                   coalesce(o.expires_at < now(), true) AS lapsed
              FROM public.games g LEFT JOIN public.game_owners o ON o.game_id = g.id
             WHERE g.status IN ('active', 'paused')
                OR (g.status = 'waiting' AND o.game_id IS NOT NULL)
            """
        )
        return [(r["id"], r["owner"], r["lapsed"]) for r in rows]

    async def claim(self, game_id: uuid.UUID, owner: str, ttl_ms: int) -> str | None:
        """Lease the game for `owner`; returns the holder if another process holds it."""
        held: str | None = await self._pool.fetchval(
            """
            INSERT INTO public.game_owners AS o (game_id, owner, expires_at)
            VALUES ($1, $2, now() + make_interval(secs => $3 / 1000.0))
            ON CONFLICT (game_id) DO UPDATE
               SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
             WHERE o.owner = EXCLUDED.owner OR o.expires_at < now()
            RETURNING owner
            """,
            game_id,
            owner,
            ttl_ms,
        )
        if held is not None:
            return None
        holder: str | None = await self._pool.fetchval(
            "SELECT owner FROM public.game_owners WHERE game_id = $1", game_id
        )
        return holder

    async def take_over(self, game_id: uuid.UUID, dead: str, owner: str, ttl_ms: int) -> bool:
        """Take a lease from a holder known to be dead (a crashed process on this host)."""
        status = await self._pool.execute(
            "UPDATE public.game_owners SET owner = $3,"
            " expires_at = now() + make_interval(secs => $4 / 1000.0)"
            " WHERE game_id = $1 AND owner = $2",
            game_id,
            dead,
            owner,
            ttl_ms,
        )
        return status.endswith(" 1")

    async def renew(self, game_ids: list[uuid.UUID], owner: str, ttl_ms: int) -> set[uuid.UUID]:
        """Extend this process's leases; returns the games whose lease it still holds."""
        rows = await self._pool.fetch(
            "UPDATE public.game_owners SET expires_at = now() + make_interval(secs => $3 / 1000.0)"
            " WHERE owner = $1 AND game_id = ANY($2::uuid[]) RETURNING game_id",
            owner,
            game_ids,
            ttl_ms,
        )
        return {r["game_id"] for r in rows}

    async def release(self, game_ids: list[uuid.UUID], owner: str) -> None:
        await self._pool.execute(
            "DELETE FROM public.game_owners WHERE owner = $1 AND game_id = ANY($2::uuid[])",
            owner,
            game_ids,
        )

    async def remove_player(self, player_id: uuid.UUID) -> None:
        """A kicked seat keeps its record but frees its device and nickname."""
        await self._pool.execute(
            "UPDATE public.players SET removed_at = now() WHERE id = $1 AND removed_at IS NULL",
            player_id,
        )

    async def save(self, projection: GameProjection) -> None:
        """Write the engine's state into the game-system tables in one transaction."""
        p = projection
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                UPDATE public.games SET status = $2::public.game_status, locked = $3,
                       current_question_index = $4, current_question_start_time = $5,
                       started_at = coalesce(started_at, $6), paused_at = $7,
                       ended_at = $8
                 WHERE id = $1
                """,
                p.game_id,
                p.status,
                p.locked,
                p.question_index,
                _ts(p.question_started_at),
                _ts(p.started_at),
                _ts(p.paused_at),
                _ts(p.ended_at),
            )
            await conn.execute(
                """
                UPDATE public.game_flows SET current_question_id = $2,
                       current_question_index = $3, current_question_start_time = $4,
                       current_question_end_time = $5, next_question_id = $6
                 WHERE game_id = $1
                """,
                p.game_id,
                p.question_id,
                p.question_index,
                _ts(p.question_started_at),
                _ts(p.question_ends_at),
                p.next_question_id,
            )
            if p.scores:
                await conn.execute(
                    """
                    UPDATE public.game_player_data d
                       SET score = s.score, answer_report = s.report::jsonb
                      FROM unnest($2::uuid[], $3::int[], $4::text[]) AS s(player_id, score, report)
                     WHERE d.player_id = s.player_id AND d.game_id = $1
                    """,
                    p.game_id,
                    [s[0] for s in p.scores],
                    [s[1] for s in p.scores],
                    [orjson.dumps(s[2]).decode() for s in p.scores],
                )


@dataclass(frozen=True, slots=True)
class NewSeat:
    """A player's row to add (`add_players`), with the joining socket's participation when
    `socket_id` is set (the seat's commit records it too: one commit, not two in a row)."""

    player_id: uuid.UUID
    device_id: str
    name: str
    socket_id: str | None = None
    user_id: uuid.UUID | None = None


@dataclass(frozen=True)
class GameProjection:
    game_id: uuid.UUID
    status: str
    locked: bool
    question_index: int
    question_id: uuid.UUID | None
    next_question_id: uuid.UUID | None
    question_started_at: int | None
    question_ends_at: int | None
    started_at: int | None
    paused_at: int | None
    ended_at: int | None
    scores: list[tuple[uuid.UUID, int, dict[str, Any]]]
