"""A lobby filling up: the next batch of joins has its seats written while the last batch's
events commit, yet no join, nor a retry of one, is answered before its own events are in the
log (nor at all when they are refused), the log keeps the order in which the joins were
decided, and a game rebuilt meanwhile has every answered join. A lobby's joins do not
rewrite the projection's rows."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.live.conftest import Recorded, answering_game, log_held, two_questions, writer_waiting
from tests.sioclient import eventually
from tuiz.errors import ErrorCode, TuizError
from tuiz.game.model import Lock
from tuiz.live.hub import GameHub
from tuiz.live.runner import GameRunner
from tuiz.store.events import EventLog

pytestmark = pytest.mark.live_pool  # the live layer: its statements run with generic plans

KEY = "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a"


def _seated(pool: asyncpg.Pool, runner: GameRunner, device_id: str) -> object:
    async def check() -> bool:
        row = await pool.fetchval(
            "SELECT 1 FROM public.players WHERE game_id = $1 AND device_id = $2",
            runner.record.id,
            device_id,
        )
        return row is not None

    return check


def _batches(runner: GameRunner, n: int) -> object:
    async def check() -> bool:
        return runner.joins is not None and runner.joins.batches >= n

    return check


async def test_the_next_joins_are_seated_while_the_last_ones_commit(pool: asyncpg.Pool) -> None:
    published = Recorded()
    async with EventLog(pool, flushers=1) as events:
        hub, runner = await answering_game(pool, events, published, two_questions())
        async with log_held(pool, runner.record.id):
            alice = asyncio.ensure_future(hub.join(runner, "dev-alice", "Alice", join_key=KEY))
            assert await eventually(_seated(pool, runner, "dev-alice"))
            # Alice's events wait on the held log; Bob's seat is written meanwhile.
            bob = asyncio.ensure_future(hub.join(runner, "dev-bob", "Bob"))
            assert await eventually(_seated(pool, runner, "dev-bob"))
            # Alice's reply was lost: her retry finds her seat, and waits for her events too.
            retry = asyncio.ensure_future(hub.join(runner, "dev-alice", "Alice", join_key=KEY))
            assert await eventually(_batches(runner, 3))
            assert not alice.done() and not bob.done() and not retry.done()
            assert published.count("game:player-joined") == 0  # nothing told before durable
        alice_id, bob_id, retried = await asyncio.gather(alice, bob, retry)
        assert retried == alice_id != bob_id
        assert published.count("game:player-joined") == 2

    rows = await pool.fetch(
        "SELECT player_id FROM public.game_events WHERE game_id = $1"
        " AND event_type = 'game:player-joined' ORDER BY sequence_number",
        runner.record.id,
    )
    assert [str(r["player_id"]) for r in rows] == [alice_id, bob_id]


async def test_a_seat_write_cut_off_behind_a_queued_batch_keeps_that_batch(
    pool: asyncpg.Pool,
) -> None:
    """Alice's seat is written and her events wait in the log's queue (behind another game's
    write) when Bob's seat write is cut off, which rebuilds the game from its log: the rebuild
    reads the log only once Alice's events are in, so the player her answered join made is
    in the rebuilt game."""
    async with EventLog(pool, flushers=1) as events:
        hub, runner = await answering_game(pool, events, Recorded(), two_questions())
        other = await hub.create(
            quiz=runner.game.quiz,
            quiz_set_id=None,
            raw_settings={},
            user_id=None,
            host_device_id="other-host",
            host_name="Other",
        )
        game_id = runner.record.id
        async with pool.acquire() as blocker:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute(
                "SELECT 1 FROM public.game_event_counters WHERE game_id = $1 FOR UPDATE",
                other.record.id,
            )
            elsewhere = asyncio.ensure_future(hub.join(other, "dev-carol", "Carol"))
            assert await eventually(_seated(pool, other, "dev-carol"))  # its events: held
            alice = asyncio.ensure_future(hub.join(runner, "dev-alice", "Alice"))
            assert await eventually(_seated(pool, runner, "dev-alice"))  # hers: queued
            # Seat rows check the game's row: Bob's waits there, and is cut off.
            await blocker.execute("SELECT 1 FROM public.games WHERE id = $1 FOR UPDATE", game_id)
            bob = asyncio.ensure_future(hub.join(runner, "dev-bob", "Bob"))
            pid = await eventually(lambda: writer_waiting(pool, "%INSERT INTO public.players%"))
            assert pid is not None, "Bob's seat write never reached the database"
            assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(Exception):  # noqa: B017  (the lost connection's own error)
                await bob
            assert runner.broken and not alice.done()
            # The rebuild (started at once) waits for Alice's events: read now, the log
            # would not have her. Bounded, it can only pass for a slow machine, never fail.
            reload = hub._reload_tasks[runner.game_id]
            done, _ = await asyncio.wait({reload}, timeout=1)
            assert not done and not alice.done()
            await tx.rollback()
        alice_id = await alice
        await elsewhere
        reloaded = await eventually(lambda: _loaded(hub, runner.game_id))
        assert isinstance(reloaded, GameRunner) and reloaded is not runner
        assert alice_id in reloaded.game.players
        assert reloaded.game.player_by_device("dev-bob") is None
        await hub.close()


async def test_a_retry_is_not_answered_when_the_join_it_waits_for_is_refused(
    pool: asyncpg.Pool,
) -> None:
    """Alice's retry is decided (with Bob's join) while her first join's events are being
    written; that write is cut off: her retry, and Bob's join in the same batch, are refused,
    and the rebuilt game has neither of them."""
    async with EventLog(pool, flushers=1) as events:
        hub, runner = await answering_game(pool, events, Recorded(), two_questions())
        game_id = runner.record.id
        async with pool.acquire() as blocker:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute(
                "SELECT 1 FROM public.game_event_counters WHERE game_id = $1 FOR UPDATE", game_id
            )
            alice = asyncio.ensure_future(hub.join(runner, "dev-alice", "Alice", join_key=KEY))
            log_writer = await eventually(lambda: writer_waiting(pool, "%fence%"))
            assert log_writer is not None, "Alice's events never reached the database"
            await blocker.execute("SELECT 1 FROM public.games WHERE id = $1 FOR UPDATE", game_id)
            bob = asyncio.ensure_future(hub.join(runner, "dev-bob", "Bob"))
            retry = asyncio.ensure_future(hub.join(runner, "dev-alice", "Alice", join_key=KEY))
            assert await eventually(lambda: writer_waiting(pool, "%INSERT INTO public.players%"))
            assert await pool.fetchval("SELECT pg_terminate_backend($1)", log_writer)
            with pytest.raises(TuizError) as refused:
                await alice
            assert refused.value.code is ErrorCode.UNAVAILABLE
            await tx.rollback()
        for join in (retry, bob):
            with pytest.raises(TuizError) as refused:
                await join
            assert refused.value.code is ErrorCode.UNAVAILABLE
        reloaded = await eventually(lambda: _loaded(hub, runner.game_id))
        assert isinstance(reloaded, GameRunner) and reloaded is not runner
        assert reloaded.game.player_by_device("dev-alice") is None
        assert reloaded.game.player_by_device("dev-bob") is None
        await hub.close()


async def _loaded(hub: GameHub, game_id: str) -> GameRunner | None:
    return hub.runners.get(game_id)


async def test_a_filling_lobby_leaves_the_game_flow_row_alone(pool: asyncpg.Pool) -> None:
    """The projection is written when it changes, not after every join: a lobby of N
    players would otherwise rewrite the game's rows N times for nothing (the game row still
    takes each batch's player count, from its trigger)."""
    async with EventLog(pool) as events:
        hub, runner = await answering_game(pool, events, Recorded(), two_questions())
        await hub.join(runner, "dev-first", "First")  # the first save writes the scores too
        await runner.flush()
        flows = "SELECT xmin::text FROM public.game_flows WHERE game_id = $1"
        before = await pool.fetchval(flows, runner.record.id)
        for i in range(5):
            await hub.join(runner, f"dev-{i}", f"Player {i}")
        await runner.flush()
        assert await pool.fetchval(flows, runner.record.id) == before
        await runner.execute(Lock(actor=runner.game.host_id, locked=True))  # a change: saved
        await runner.flush()
        assert await pool.fetchval(flows, runner.record.id) != before
        locked = "SELECT locked FROM public.games WHERE id = $1"
        assert await pool.fetchval(locked, runner.record.id) is True
        await hub.close()
