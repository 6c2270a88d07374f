"""The live-game layer against a real PostgreSQL event log, with a clock the test moves."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.live.conftest import Recorded, answering_game, open_first_question, two_questions
from tuiz.game.model import SubmitAnswer
from tuiz.live import runner as runner_module
from tuiz.live.hub import replay
from tuiz.store.events import EventLog

pytestmark = pytest.mark.live_pool  # the live layer: its statements run with generic plans


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Game time under the test's control (timers still run on real time, far later)."""
    fake = Clock(1_900_000_000_000)
    monkeypatch.setattr(runner_module, "now_ms", fake)
    monkeypatch.setattr("tuiz.live.hub.now_ms", fake)
    return fake


async def test_a_retry_after_the_deadline_persists_and_publishes_the_reveal_once(
    pool: asyncpg.Pool, clock: Clock
) -> None:
    """The first write of an answer is held by a lock on the game's counter; the deadline
    passes; the client retries. The retry decides the reveal: it must reach the log and the
    room exactly once, and the log must rebuild the game the players saw."""
    published = Recorded()
    questions = two_questions()
    async with EventLog(pool) as events:
        hub, runner = await answering_game(pool, events, published, questions)
        alice = await hub.join(runner, "dev-alice", "Alice")
        await hub.join(runner, "dev-bob", "Bob")
        await open_first_question(runner)
        deadline = runner.game.phase_ends_at
        assert deadline is not None
        answer = SubmitAnswer(
            actor=alice, question_id=questions[0].id, answer_id="a-1", choice_ids=("a",), text=None
        )

        blocker = await pool.acquire()
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(
            "SELECT 1 FROM public.game_event_counters WHERE game_id = $1 FOR UPDATE",
            runner.record.id,
        )
        first = asyncio.create_task(runner.answer(answer))
        await asyncio.sleep(0)  # one step: decided, applied, its write queued
        assert (alice, questions[0].id) in runner._pending_answers
        clock.now = deadline + 1_000  # the deadline passes while the first write waits
        retry = asyncio.create_task(runner.answer(answer))
        done, _ = await asyncio.wait({first, retry}, timeout=0.2)
        assert not done  # both wait for the log
        await tx.rollback()
        await pool.release(blocker)
        acks = await asyncio.gather(first, retry)

    assert acks[0] == acks[1] and acks[0].answer_id == "a-1"
    assert published.count("game:question:ended") == 1
    rows = await pool.fetch(
        "SELECT payload FROM public.game_events WHERE game_id = $1"
        " AND event_type = 'game:phase:change' AND payload->>'phase' = 'answer_reveal'",
        runner.record.id,
    )
    assert len(rows) == 1
    async with EventLog(pool) as events:
        rebuilt, last_seq = await replay(events, runner.record.id)
    assert last_seq == runner.last_seq
    assert rebuilt.phase is runner.game.phase
    assert {p.id: p.score for p in rebuilt.players.values()} == {
        p.id: p.score for p in runner.game.players.values()
    }
