"""A game whose write is cut off in flight (its database connection ended under it) answers
UNAVAILABLE, and the hub rebuilds it from the log by itself, keeping the sockets seated on it:
a retry of the same answer is then accepted, exactly once.

The log's backend is ended with `pg_terminate_backend` while its batch waits on a row lock the
test holds, so the failure hits a write in flight, every time, on the shared test server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import asyncpg
import pytest

from tests.live.conftest import (
    Recorded,
    answer,
    answering_game,
    log_held,
    open_first_question,
    two_questions,
    writer_waiting,
)
from tests.sioclient import eventually
from tuiz.errors import ErrorCode, TuizError
from tuiz.live.hub import GameHub
from tuiz.live.runner import GameRunner
from tuiz.store.events import EventLog

pytestmark = pytest.mark.live_pool  # the live layer: its statements run with generic plans


async def _cut_off_in_flight(
    pool: asyncpg.Pool, runner: GameRunner, call: Awaitable[object]
) -> None:
    """Run `call` while the game's log counter row is held, end the log writer's backend
    once its batch waits there, and check the call fails with UNAVAILABLE."""
    async with log_held(pool, runner.record.id):
        first = asyncio.ensure_future(call)
        pid = await eventually(lambda: writer_waiting(pool))
        assert pid is not None, "the write never reached the database"
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(TuizError) as refused:
            await first
        assert refused.value.code is ErrorCode.UNAVAILABLE


async def test_a_write_lost_in_flight_reloads_the_game_with_its_seats(
    pool: asyncpg.Pool,
) -> None:
    published = Recorded()
    questions = two_questions()
    async with EventLog(pool, flushers=1) as events:
        hub, runner = await answering_game(pool, events, published, questions)
        alice = await hub.join(runner, "dev-alice", "Alice")
        await runner.seat_socket("sid-alice", alice)
        await open_first_question(runner)
        first = answer(alice, questions[0], "a-1")

        await _cut_off_in_flight(pool, runner, runner.answer(first))

        assert runner.broken and hub.runners.get(runner.game_id) is not runner
        reloaded = await eventually(lambda: _loaded(hub, runner.game_id), timeout=10)
        assert reloaded is not None and reloaded is not runner
        assert reloaded.seats.player_sids == {alice: {"sid-alice"}}  # still seated
        assert questions[0].id not in reloaded.game.players[alice].answers  # log: the truth
        accepted = await reloaded.answer(first)  # the client's retry, same answer id
        assert accepted.answer_id == "a-1"
        assert (await reloaded.answer(first)).answer_id == "a-1"  # and again: idempotent
        await hub.close()

    rows = await pool.fetch(
        "SELECT sequence_number, event_type FROM public.game_events WHERE game_id = $1 ORDER BY 1",
        runner.record.id,
    )
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert sum(r[1] == "game:answer:accepted" for r in rows) == 1


async def _loaded(hub: GameHub, game_id: str) -> object | None:
    return hub.runners.get(game_id)


async def test_a_join_cut_off_before_its_log_write_leaves_device_and_name_free(
    pool: asyncpg.Pool,
) -> None:
    """The seat's row is written before the join's log event; when that write is lost the
    rebuilt game has no such player, and the device (retrying) and the nickname must not be
    held by the orphan row forever."""
    published = Recorded()
    async with EventLog(pool, flushers=1) as events:
        hub, runner = await answering_game(pool, events, published, two_questions())
        await _cut_off_in_flight(pool, runner, hub.join(runner, "dev-alice", "Alice"))

        reloaded = await eventually(lambda: _loaded(hub, runner.game_id), timeout=10)
        assert reloaded is not None and reloaded is not runner
        assert isinstance(reloaded, GameRunner)
        assert reloaded.game.player_by_device("dev-alice") is None  # the log never had it
        orphan = await pool.fetchval(
            "SELECT count(*) FROM public.players WHERE game_id = $1 AND device_id = 'dev-alice'",
            runner.record.id,
        )
        assert orphan == 1  # the row did land

        alice = await hub.join(reloaded, "dev-alice", "Alice")  # the client's retry
        assert reloaded.game.players[alice].name == "Alice"
        with pytest.raises(TuizError) as taken:  # a real seat still holds its name
            await hub.join(reloaded, "dev-other", "alice")
        assert taken.value.code is ErrorCode.CONFLICT
        await hub.close()

    rows = await pool.fetch(
        "SELECT id::text, device_id FROM public.players WHERE game_id = $1 AND NOT is_host",
        runner.record.id,
    )
    assert [(r["id"], r["device_id"]) for r in rows] == [(alice, "dev-alice")]


async def test_a_keyed_join_retried_on_the_broken_game_is_not_answered_from_memory(
    pool: asyncpg.Pool,
) -> None:
    """The broken runner's memory holds the seat its lost write took; a retry with the join key
    must not be told it is seated there (nothing durable says so), and on the rebuilt game the
    same retry takes a real seat."""
    key = "retry-key-0123456789abcdef"
    published = Recorded()
    async with EventLog(pool, flushers=1) as events:
        hub, runner = await answering_game(pool, events, published, two_questions())
        join = hub.join(runner, "dev-alice", "Alice", join_key=key)
        await _cut_off_in_flight(pool, runner, join)
        with pytest.raises(TuizError) as refused:
            await hub.join(runner, "dev-alice", "Alice", join_key=key)
        assert refused.value.code is ErrorCode.UNAVAILABLE

        reloaded = await eventually(lambda: _loaded(hub, runner.game_id), timeout=10)
        assert isinstance(reloaded, GameRunner) and reloaded is not runner
        alice = await hub.join(reloaded, "dev-alice", "Alice", join_key=key)
        assert reloaded.game.players[alice].device_id == "dev-alice"
        assert await hub.join(reloaded, "dev-alice", "Alice", join_key=key) == alice
        await hub.close()
