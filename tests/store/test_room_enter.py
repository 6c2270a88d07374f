"""`room:join` in one round trip (PgRoomDirectory.enter over PgConnectionStore.enter): the same
access and the same participation rows as a lookup followed by `join`."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest

from tests.factories import make_game, make_player
from tuiz.errors import TuizError
from tuiz.store.connections import ConnectionStatus, NewConnection
from tuiz.store.connections_pg import _CLOSE, _ENTER, _JOIN, _LEAVE, PgConnectionStore
from tuiz.store.ids import new_ids
from tuiz.store.rooms import PgRoomDirectory, RoomAccess

pytestmark = pytest.mark.live_pool  # the live layer: its statements run with generic plans


async def _rows(pool: asyncpg.Pool, game: uuid.UUID) -> list[tuple[str, str, str, str]]:
    rows = await pool.fetch(
        "SELECT socket_id, device_id, role, status::text FROM public.room_participants"
        " WHERE game_id = $1 ORDER BY joined_at, socket_id",
        game,
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def test_enter_writes_seats_not_spectators(pool: asyncpg.Pool) -> None:
    store = PgConnectionStore(pool)
    rooms = PgRoomDirectory(pool, store)
    async with pool.acquire() as conn:
        game = await make_game(conn)
        host = await make_player(conn, game, "dev-host", "Host", is_host=True)
        player = await make_player(conn, game, "dev-p", "P")
    for sid, device in [("s-host", "dev-host"), ("s-p", "dev-p"), ("s-watch", "dev-watch")]:
        await store.open(NewConnection(sid, device))
    entered = await asyncio.gather(
        rooms.enter(str(game), "dev-host", "s-host", None),
        rooms.enter(str(game), "dev-p", "s-p", None),
        rooms.enter(str(game), "dev-watch", "s-watch", None),
    )
    assert entered == [
        (RoomAccess(game, host, "host"), True),
        (RoomAccess(game, player, "player"), True),
        (RoomAccess(game, None, "spectator"), True),
    ]
    assert [await rooms.access(str(game), d) for d in ("dev-host", "dev-p", "dev-watch")] == [
        a for a, _ in entered
    ]
    assert sorted(await _rows(pool, game)) == [
        ("s-host", "dev-host", "host", "active"),
        ("s-p", "dev-p", "player", "active"),
    ]
    # The device again from another socket: its older participation ends, as with `join`.
    await store.open(NewConnection("s-p2", "dev-p"))
    assert await rooms.enter(str(game), "dev-p", "s-p2", None) == entered[1]
    assert await store.active_sockets(game) == ["s-host", "s-p2"]
    assert ("s-p", "dev-p", "player", "disconnected") in await _rows(pool, game)
    # A close waits for the socket's queued enter, then ends what it wrote.
    await store.open(NewConnection("s-p3", "dev-p"))
    entering = asyncio.ensure_future(rooms.enter(str(game), "dev-p", "s-p3", None))
    await asyncio.sleep(0)
    ended = await store.close("s-p3", ConnectionStatus.DISCONNECTED)
    assert (await entering)[0] == entered[1][0]
    assert [(c.game_id, c.player_id) for c in ended] == [(game, player)]
    assert await store.active_sockets(game) == ["s-host"]


async def test_enter_unknown_game_is_not_found(pool: asyncpg.Pool) -> None:
    rooms = PgRoomDirectory(pool, PgConnectionStore(pool))
    with pytest.raises(TuizError) as raised:
        await rooms.enter(str(uuid.uuid4()), "dev-a", "s-a", None)
    assert raised.value.code.value == "NOT_FOUND"
    with pytest.raises(TuizError):
        await rooms.enter("not-a-uuid", "dev-a", "s-a", None)


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows a plan's scans produced or threw away, and its joins threw away, over all loops."""
    keys = ["Rows Removed by Filter", "Rows Removed by Join Filter"]
    if "Relation Name" in plan and "Scan" in plan["Node Type"]:
        keys.append("Actual Rows")
    own = sum(int(plan.get(key, 0)) for key in keys) * int(plan.get("Actual Loops", 1))
    return own + sum(_rows_read(child) for child in plan.get("Plans", []))


async def _explained(conn: asyncpg.Connection, sql: str, *args: Any) -> dict[str, Any]:
    """EXPLAIN ANALYZE of one statement as the live pool runs it (`store/db.py`
    GENERIC_PLANS): prepared, with its generic plan; rolled back."""
    await conn.execute(f"PREPARE explained AS {sql}")
    try:
        types = await conn.fetchval(
            "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = 'explained'"
        )
        values = [
            await conn.fetchval(f"SELECT quote_nullable($1::{t})", arg)
            for t, arg in zip(types, args, strict=True)
        ]
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            explained = await conn.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE explained({', '.join(values)})"
            )
        finally:
            await tx.rollback()
        assert await conn.fetchval(
            "SELECT (generic_plans, custom_plans) = (1, 0) FROM pg_prepared_statements"
            " WHERE name = 'explained'"
        )
    finally:
        await conn.execute("DEALLOCATE explained")
    if isinstance(explained, str):  # without the pool's json codec
        explained = json.loads(explained)
    plan: dict[str, Any] = explained[0]["Plan"]
    return plan


@pytest.mark.parametrize(
    "analyzed",
    [
        "public.games, public.players",
        "public.games, public.players, public.room_participants, public.websocket_connections",
    ],
    ids=["room-tables-never-analyzed", "analyzed-while-the-room-was-empty"],
)
async def test_a_join_batch_does_not_walk_the_room(pool: asyncpg.Pool, analyzed: str) -> None:
    """A join, a close and a leave stay index lookups by their keys however many are in the
    room: before any statistics on the room's tables (a hash of every active row against the
    batch; `_END_ACTIVE`), and with statistics taken while nobody was in it (autovacuum's
    last ANALYZE before a game's burst of joins: 'active' and the new game looked absent,
    any index on them as cheap as the right one; migration 20251208000000)."""
    store = PgConnectionStore(pool)
    rooms = PgRoomDirectory(pool, store)
    seats = 300
    async with pool.acquire() as conn:
        # Yesterday's games: their seats joined and left; then the statistics were taken.
        for _ in range(10):
            old = await make_game(conn)
            await conn.execute(
                "WITH p AS (INSERT INTO public.players (game_id, device_id, player_name)"
                " SELECT $1, 'dev-' || i, 'P' || i FROM generate_series(1, $2) AS i"
                " RETURNING id, device_id)"
                " INSERT INTO public.room_participants"
                " (game_id, socket_id, device_id, player_id, status, left_at)"
                " SELECT $1, 'old-' || gen_random_uuid(), p.device_id, p.id, 'disconnected',"
                " now() FROM p",
                old,
                seats,
            )
            await conn.execute(
                "INSERT INTO public.websocket_connections"
                " (socket_id, device_id, status, disconnected_at)"
                " SELECT socket_id, device_id, 'disconnected', now()"
                " FROM public.room_participants WHERE game_id = $1",
                old,
            )
        await conn.execute(f"ANALYZE {analyzed}")
        game = await make_game(conn)
        players = await conn.fetch(
            "INSERT INTO public.players (game_id, device_id, player_name)"
            " SELECT $1, 'dev-' || i, 'P' || i FROM generate_series(1, $2) AS i RETURNING id",
            game,
            seats,
        )
    for i in range(1, seats + 1):
        await store.open(NewConnection(f"s-{i}", f"dev-{i}"))
    await asyncio.gather(
        *(rooms.enter(str(game), f"dev-{i}", f"s-{i}", None) for i in range(1, seats - 7))
    )
    assert len(await store.active_sockets(game)) == seats - 8
    batch = range(seats - 7, seats + 1)  # the last 8 seats, one batch
    devices = [f"dev-{i}" for i in batch]
    async with pool.acquire() as conn:
        enter = await _explained(
            conn, _ENTER, [game] * 8, [f"s-{i}" for i in batch], devices, [None] * 8, new_ids(8)
        )
        join = await _explained(
            conn,
            _JOIN,
            [game] * 8,
            [f"s-{i}" for i in batch],
            devices,
            [p["id"] for p in players[seats - 8 :]],
            [None] * 8,
            ["player"] * 8,
            ["{}"] * 8,
            new_ids(8),
        )
        close = await _explained(conn, _CLOSE, "s-1", "disconnected")
        leave = await _explained(conn, _LEAVE, "s-1", game)
    # A few rows per joiner (game, seat, older participation): before, 2,300-4,700 for the
    # batch of 8, and 292 per close or leave.
    assert _rows_read(enter) <= 8 * 4
    assert _rows_read(join) <= 8 * 4
    assert _rows_read(close) <= 4
    assert _rows_read(leave) <= 4
