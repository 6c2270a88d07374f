"""Rows written on the hot paths get time-ordered (version 7) ids from `store/ids.py`: a random
key puts each row on a random page of the primary key (and of every index on it), which the
database then writes to its WAL in full after each checkpoint."""

from __future__ import annotations

import time
import uuid

import asyncpg
import pytest

from tests.factories import make_game, make_player
from tuiz.store.connections import NewConnection, Participation
from tuiz.store.connections_pg import PgConnectionStore
from tuiz.store.games import GameRepository, NewSeat
from tuiz.store.ids import new_id, new_ids

pytestmark = pytest.mark.live_pool  # the live layer: its statements run with generic plans


def _v7_now(ids: list[uuid.UUID], since_ms: int) -> bool:
    now_ms = time.time_ns() // 1_000_000
    return all(
        i.version == 7
        and i.variant == uuid.RFC_4122
        and since_ms <= int.from_bytes(i.bytes[:6], "big") <= now_ms
        for i in ids
    )


def test_new_ids_are_version_7_unique_and_ordered_across_milliseconds() -> None:
    since = time.time_ns() // 1_000_000
    first = [uuid.UUID(str(i)) for i in new_ids(1000)]
    stamped = int.from_bytes(first[0].bytes[:6], "big")
    while time.time_ns() // 1_000_000 <= stamped:  # the next millisecond: a clock, not an event
        pass
    second = [uuid.UUID(str(i)) for i in [*new_ids(10), new_id()]]
    assert _v7_now(first + second, since)
    assert len(set(first + second)) == 1011
    assert max(i.bytes for i in first) < min(i.bytes for i in second)
    assert new_ids(0) == []


async def test_connection_and_participation_rows_get_them(pool: asyncpg.Pool) -> None:
    """ws:connect (`open`), room:join (`enter`), a seat's own participation (`add_players`)
    and the connection store's `join`."""
    since = time.time_ns() // 1_000_000
    store = PgConnectionStore(pool)
    async with pool.acquire() as conn:
        game = await make_game(conn)
        await make_player(conn, game, "dev-a", "A")
        player_c = await make_player(conn, game, "dev-c", "C")
    for sid, device in [("s-a", "dev-a"), ("s-b", "dev-b"), ("s-c", "dev-c")]:
        await store.open(NewConnection(sid, device))
    await store.enter(game, "s-a", "dev-a", None)
    await GameRepository(pool).add_players(game, [NewSeat(new_id(), "dev-b", "B", "s-b", None)])
    await store.join(Participation(game, "s-c", "dev-c", player_c, "player"))

    rows = await pool.fetch(
        "SELECT id FROM public.websocket_connections WHERE socket_id = ANY($1::text[])"
        " UNION ALL SELECT id FROM public.room_participants WHERE game_id = $2",
        ["s-a", "s-b", "s-c"],
        game,
    )
    assert len(rows) == 6
    assert _v7_now([r[0] for r in rows], since)
