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

from tests.live.conftest import Recorded, answering_game, open_first_question, two_questions
from tests.sioclient import eventually
from tuiz.errors import ErrorCode, TuizError
from tuiz.game.model import SubmitAnswer
from tuiz.store.events import EventLog, NewEvent

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
        answer = SubmitAnswer(
            actor=alice, question_id=questions[0].id, answer_id="a-1", choice_ids=("a",), text=None
        )
        with pytest.raises(TuizError) as refused:
            await runner.answer(answer)
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
        async with pool.acquire() as blocker, pool.acquire() as taker:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute(  # hold the write after its fence, at the counter row
                "SELECT 1 FROM public.game_event_counters WHERE game_id = $1 FOR UPDATE", game_id
            )
            join = asyncio.ensure_future(hub.join(runner, "dev-bob", "Bob"))
            assert await eventually(lambda: _waiting(pool, 1)), "the write never waited"
            takeover = asyncio.ensure_future(_take_over(taker, game_id))
            assert await eventually(lambda: _waiting(pool, 2)), "the takeover did not wait"
            assert not takeover.done()
            await tx.rollback()
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


async def _waiting(pool: asyncpg.Pool, n: int) -> bool | None:
    waiting = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database()"
    )
    return waiting >= n or None


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
