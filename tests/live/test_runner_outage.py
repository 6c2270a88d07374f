"""A game whose write is cut off in flight (its database connection ended under it) answers
UNAVAILABLE, and the hub rebuilds it from the log by itself, keeping the sockets seated on it:
a retry of the same answer is then accepted, exactly once.

The log's backend is ended with `pg_terminate_backend` while its batch waits on a row lock the
test holds, so the failure hits a write in flight, every time, on the shared test server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.game.helpers import mc, quiz
from tests.live.test_runner import Recorded
from tests.sioclient import eventually
from tuiz.config import Settings
from tuiz.errors import ErrorCode, TuizError
from tuiz.game.model import Next, Start, SubmitAnswer
from tuiz.live.hub import GameHub
from tuiz.store.db import create_pool
from tuiz.store.events import EventLog
from tuiz.store.games import GameRepository


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(db_url, min_size=2, max_size=8)
    try:
        yield p
    finally:
        await p.close()


async def _waiting_writer(pool: asyncpg.Pool) -> int | None:
    pid: int | None = await pool.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database()"
    )
    return pid


async def test_a_write_lost_in_flight_reloads_the_game_with_its_seats(
    pool: asyncpg.Pool,
) -> None:
    published = Recorded()
    questions = [mc(str(uuid.uuid4()), show_question_time=0, answering_time=60) for _ in range(2)]
    async with EventLog(pool, flushers=1) as events:
        hub = GameHub(
            publisher=published, settings=Settings(), events=events, games=GameRepository(pool)
        )
        runner = await hub.create(
            quiz=quiz(*questions),
            quiz_set_id=None,
            raw_settings={"auto_advance": False},
            user_id=None,
            host_device_id="host-device",
            host_name="Host",
        )
        alice = await hub.join(runner, "dev-alice", "Alice")
        await runner.seat_socket("sid-alice", alice)
        await runner.execute(Start(actor=runner.game.host_id))
        while runner.game.phase.value != "answering":
            await runner.execute(Next(actor=runner.game.host_id))
        answer = SubmitAnswer(
            actor=alice, question_id=questions[0].id, answer_id="a-1", choice_ids=("a",), text=None
        )

        async with pool.acquire() as blocker:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute(
                "SELECT 1 FROM public.game_event_counters WHERE game_id = $1 FOR UPDATE",
                runner.record.id,
            )
            first = asyncio.create_task(runner.answer(answer))
            pid = await eventually(lambda: _waiting_writer(pool))
            assert pid is not None, "the answer's write never reached the database"
            assert await blocker.fetchval("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(TuizError) as refused:
                await first
            assert refused.value.code is ErrorCode.UNAVAILABLE
            await tx.rollback()

        assert runner.broken and hub.runners.get(runner.game_id) is not runner
        reloaded = await eventually(lambda: _loaded(hub, runner.game_id), timeout=10)
        assert reloaded is not None and reloaded is not runner
        assert reloaded.seats.player_sids == {alice: {"sid-alice"}}  # still seated
        assert questions[0].id not in reloaded.game.players[alice].answers  # log: the truth
        accepted = await reloaded.answer(answer)  # the client's retry, same answer id
        assert accepted.answer_id == "a-1"
        assert (await reloaded.answer(answer)).answer_id == "a-1"  # and again: idempotent
        await hub.close()

    rows = await pool.fetch(
        "SELECT sequence_number, event_type FROM public.game_events WHERE game_id = $1 ORDER BY 1",
        runner.record.id,
    )
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert sum(r[1] == "game:answer:accepted" for r in rows) == 1


async def _loaded(hub: GameHub, game_id: str) -> object | None:
    return hub.runners.get(game_id)
