"""A process that lost a game's lease can never add a decision to its log.

The danger: a process stalls (a long pause, the database away for longer than the lease) and
another process takes the game over and replays the log. When the first wakes up it still
holds the game in memory until its next renewal notices; an answer it accepted then would be
acknowledged, logged behind the new owner's back, and missing from the game everyone plays.
The log writer fences each game's ordered events with the writer's lease (store/events.py).
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from tests.live.conftest import (
    Recorded,
    answer,
    answering_game,
    log_held,
    open_first_question,
    two_questions,
    waiting_on_locks,
)
from tests.sioclient import eventually
from tuiz.errors import ErrorCode, TuizError
from tuiz.store.events import EventLog, NewEvent

pytestmark = pytest.mark.live_pool  # the live layer: its statements run with generic plans

OTHER = "elsewhere:4242:0-1:cafe"  # another host's process: never "dead here"


async def _take_over(conn: asyncpg.Connection, game_id: uuid.UUID) -> str:
    """What another process's failover does once the lease lapsed."""
    status: str = await conn.execute(
        "UPDATE public.game_owners SET owner = $2, expires_at = now() + interval '1 minute'"
        " WHERE game_id = $1",
        game_id,
        OTHER,
    )
    return status


async def _log(pool: asyncpg.Pool, game_id: uuid.UUID) -> list[tuple[int, str]]:
    rows = await pool.fetch(
        "SELECT sequence_number, event_type FROM public.game_events WHERE game_id = $1 ORDER BY 1",
        game_id,
    )
    return [(r[0], r[1]) for r in rows]


async def test_an_answer_after_the_lease_moved_is_refused_and_never_logged(
    pool: asyncpg.Pool,
) -> None:
    published = Recorded()
    questions = two_questions()
    async with EventLog(pool, flushers=1) as events:
        hub, runner = await answering_game(pool, events, published, questions)
        alice = await hub.join(runner, "dev-alice", "Alice")
        await runner.seat_socket("sid-alice", alice)
        await open_first_question(runner)
        before = await _log(pool, runner.record.id)

        async with pool.acquire() as conn:
            assert await _take_over(conn, runner.record.id) == "UPDATE 1"
        with pytest.raises(TuizError) as refused:
            await runner.answer(answer(alice, questions[0], "a-1"))
        assert refused.value.code is ErrorCode.UNAVAILABLE

        assert runner.broken and hub.runners.get(runner.game_id) is not runner
        assert published.count("game:answer:accepted") == 0
        # The game is the other process's now: this one does not take it back.
        with pytest.raises(TuizError) as elsewhere:
            await hub.get(runner.game_id)
        assert elsewhere.value.code is ErrorCode.UNAVAILABLE
        assert elsewhere.value.details.get("owner") == OTHER
        await hub.close()

    assert await _log(pool, runner.record.id) == before  # nothing behind the new owner's back


async def test_a_takeover_waits_for_a_write_already_under_way(pool: asyncpg.Pool) -> None:
    """The writer share-locks the lease row: a takeover racing a write commits after it, so
    the new owner's replay has every event the old owner acknowledged."""
    published = Recorded()
    async with EventLog(pool, flushers=1) as events:
        hub, runner = await answering_game(pool, events, published, two_questions())
        game_id = runner.record.id
        async with pool.acquire() as taker:
            async with log_held(pool, game_id):  # the write waits after its fence
                join = asyncio.ensure_future(hub.join(runner, "dev-bob", "Bob"))
                assert await eventually(lambda: waiting_on_locks(pool, 1)), "no write waited"
                takeover = asyncio.ensure_future(_take_over(taker, game_id))
                assert await eventually(lambda: waiting_on_locks(pool, 2)), "no takeover waited"
                assert not takeover.done()
            bob = await join
            assert await takeover == "UPDATE 1"
        await hub.close()

    assert (await _log(pool, game_id))[-1][1] == "game:player-joined"
    seated = await pool.fetchval(
        "SELECT count(*) FROM public.game_events WHERE game_id = $1 AND player_id = $2",
        game_id,
        uuid.UUID(bob),
    )
    assert seated >= 1


async def test_events_that_decide_nothing_are_written_by_any_process(pool: asyncpg.Pool) -> None:
    """Presence and room messages are logged by whichever process holds the socket; only a
    game's ordered events (its decisions) need its lease."""
    published = Recorded()
    async with EventLog(pool, flushers=1) as events:
        hub, runner = await answering_game(pool, events, published, two_questions())
        game_id = runner.record.id
        await hub.close()
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO public.game_owners (game_id, owner, expires_at)"
                " VALUES ($1, $2, now() + interval '1 minute')"
                " ON CONFLICT (game_id) DO UPDATE SET owner = EXCLUDED.owner",
                game_id,
                OTHER,
            )
        presence = NewEvent(game_id=game_id, event_type="room:user-joined", action="join")
        assert (await events.append(presence)).seq > 0
        with pytest.raises(TuizError) as refused:
            await events.append_many([presence], ordered=True)
        assert refused.value.code is ErrorCode.UNAVAILABLE


async def test_closing_lets_queued_decisions_in_before_letting_the_leases_go(
    pool: asyncpg.Pool,
) -> None:
    """SIGTERM mid-question: an answer written and one queued behind it both reach the log
    (the leases that fence them are released only after them)."""
    published = Recorded()
    questions = two_questions()
    async with EventLog(pool, flushers=1) as events:
        hub, runner = await answering_game(pool, events, published, questions)
        alice = await hub.join(runner, "dev-alice", "Alice")
        bob = await hub.join(runner, "dev-bob", "Bob")
        await open_first_question(runner)

        async with log_held(pool, runner.record.id):
            first = asyncio.ensure_future(runner.answer(answer(alice, questions[0], "a-1")))
            assert await eventually(lambda: waiting_on_locks(pool, 1)), "no write waited"
            second = asyncio.ensure_future(runner.answer(answer(bob, questions[0], "b-1")))
            await eventually(lambda: _queued(events))
            closing = asyncio.ensure_future(hub.close())
        await closing
        assert (await first).answer_id == "a-1"
        assert (await second).answer_id == "b-1"

    answered = await pool.fetchval(
        "SELECT count(*) FROM public.game_events WHERE game_id = $1"
        " AND event_type = 'game:answer:accepted'",
        runner.record.id,
    )
    assert answered == 2


async def _queued(events: EventLog) -> bool | None:
    return events.queued > 0 or None


async def test_settled_waits_for_the_write_in_flight_and_the_queue(pool: asyncpg.Pool) -> None:
    published = Recorded()
    async with EventLog(pool, flushers=1) as events:
        hub, runner = await answering_game(pool, events, published, two_questions())
        game_id = runner.record.id
        async with log_held(pool, game_id):
            first = events.submit(NewEvent(game_id=game_id, event_type="room:message", action="a"))
            assert await eventually(lambda: waiting_on_locks(pool, 1)), "no write waited"
            second = events.submit(NewEvent(game_id=game_id, event_type="room:message", action="b"))
            settled = asyncio.ensure_future(events.settled())
            await asyncio.sleep(0)  # one turn of the loop: settled has started waiting
            assert not settled.done() and not first.done() and not second.done()
        await settled
        assert first.done() and second.done()
        assert (await second).seq == (await first).seq + 1
        await hub.close()
