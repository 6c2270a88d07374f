"""`room:join` in one round trip (PgRoomDirectory.enter over PgConnectionStore.enter): the same
access and the same participation rows as a lookup followed by `join`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.factories import make_game, make_player
from tuiz.errors import TuizError
from tuiz.store.connections import ConnectionStatus, NewConnection
from tuiz.store.connections_pg import PgConnectionStore
from tuiz.store.db import create_pool
from tuiz.store.rooms import PgRoomDirectory, RoomAccess


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_url, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


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
