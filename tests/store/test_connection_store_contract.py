"""One contract, two connection stores: PostgreSQL and in-memory must behave the same."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import pytest

from tests.factories import make_game, make_player
from tuiz.store.connections import (
    ConnectionStatus,
    ConnectionStore,
    NewConnection,
    Participation,
)
from tuiz.store.connections_memory import MemoryConnectionStore
from tuiz.store.connections_pg import PgConnectionStore
from tuiz.store.db import create_pool

pytestmark = pytest.mark.live_pool  # the live layer: its statements run with generic plans


@dataclass
class Harness:
    store: ConnectionStore
    seat: Callable[[UUID | None, str], Awaitable[tuple[UUID, UUID]]]
    """(game_id or None for a new game, device_id) -> (game_id, player_id)"""


@pytest.fixture(params=["pg", "memory"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "memory":

        async def memory_seat(game_id: UUID | None, device_id: str) -> tuple[UUID, UUID]:
            return game_id or uuid.uuid4(), uuid.uuid4()

        yield Harness(MemoryConnectionStore(), memory_seat)
        return
    db_url = request.getfixturevalue("db_url")
    pool = await create_pool(db_url, max_size=4)

    async def pg_seat(game_id: UUID | None, device_id: str) -> tuple[UUID, UUID]:
        async with pool.acquire() as conn:
            game = game_id or await make_game(conn)
            player = await make_player(conn, game, device_id, f"p-{device_id[-6:]}")
        return game, player

    try:
        yield Harness(PgConnectionStore(pool), pg_seat)
    finally:
        await pool.close()


def _conn(socket_id: str, device_id: str) -> NewConnection:
    return NewConnection(socket_id, device_id, ip_address="127.0.0.1", metadata={"ua": "t"})


async def test_reconnect_count_counts_reconnections(harness: Harness) -> None:
    store = harness.store
    first = await store.open(_conn("s1", "dev-a"))
    second = await store.open(_conn("s2", "dev-a"))
    other = await store.open(_conn("s3", "dev-b"))
    await store.close("s2", ConnectionStatus.DISCONNECTED)
    third = await store.open(_conn("s4", "dev-a"))
    assert [first.reconnect_count, second.reconnect_count, third.reconnect_count] == [0, 1, 2]
    assert other.reconnect_count == 0
    assert await store.active_count() == 3


async def test_close_ends_participations(harness: Harness) -> None:
    store = harness.store
    game, player = await harness.seat(None, "dev-a")
    await store.open(_conn("s1", "dev-a"))
    await store.join(Participation(game, "s1", "dev-a", player, "player"))
    assert await store.active_sockets(game) == ["s1"]
    ended = await store.close("s1", ConnectionStatus.DISCONNECTED)
    assert [(c.game_id, c.player_id) for c in ended] == [(game, player)]
    assert await store.active_sockets(game) == []
    assert await store.active_count() == 0
    assert await store.close("s1", ConnectionStatus.DISCONNECTED) == []


async def test_one_active_participation_per_device_and_game(harness: Harness) -> None:
    store = harness.store
    game, player = await harness.seat(None, "dev-a")
    await store.open(_conn("s1", "dev-a"))
    await store.open(_conn("s2", "dev-a"))
    await store.join(Participation(game, "s1", "dev-a", player, "player"))
    await store.join(Participation(game, "s2", "dev-a", player, "player"))
    assert await store.active_sockets(game) == ["s2"]
    assert await store.close("s1", ConnectionStatus.DISCONNECTED) == []


async def test_leave_only_the_named_game(harness: Harness) -> None:
    store = harness.store
    game1, player1 = await harness.seat(None, "dev-a")
    game2, player2 = await harness.seat(None, "dev-a")
    await store.open(_conn("s1", "dev-a"))
    await store.join(Participation(game1, "s1", "dev-a", player1, "player"))
    await store.join(Participation(game2, "s1", "dev-a", player2, "player"))
    left = await store.leave("s1", game1)
    assert left is not None and left.game_id == game1
    assert await store.leave("s1", game1) is None
    assert await store.active_sockets(game1) == []
    assert await store.active_sockets(game2) == ["s1"]


async def test_heartbeat_keeps_connections_out_of_the_sweep(harness: Harness) -> None:
    store = harness.store
    game, player = await harness.seat(None, "dev-a")
    await store.open(_conn("s1", "dev-a"))
    await store.open(_conn("s2", "dev-b"))
    await store.join(Participation(game, "s1", "dev-a", player, "player"))
    assert await store.heartbeat(["s1", "s2", "unknown"]) == 2
    assert await store.sweep_stale(timedelta(minutes=5)) == 0
    assert await store.sweep_stale(timedelta(0)) == 2
    assert await store.active_count() == 0
    assert await store.active_sockets(game) == []
    assert await store.heartbeat(["s1"]) == 0


async def test_cleanup_keeps_active_and_recent(harness: Harness) -> None:
    store = harness.store
    await store.open(_conn("s1", "dev-a"))
    await store.open(_conn("s2", "dev-b"))
    await store.close("s2", ConnectionStatus.DISCONNECTED)
    assert await store.cleanup(1) == 0
    assert await store.cleanup(0) == 1
    assert await store.active_count() == 1
