"""The live-game layer against a real PostgreSQL event log, with a clock the test moves.

The publisher here is a real implementation of the port that records what it would send;
the event log, the game tables and the leases are the real ones.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
import pytest

from tests.game.helpers import mc, quiz
from tuiz.config import Settings
from tuiz.game.model import Next, Start, SubmitAnswer
from tuiz.live import runner as runner_module
from tuiz.live.hub import GameHub, replay
from tuiz.store.db import create_pool
from tuiz.store.events import EventLog
from tuiz.store.games import GameRepository


class Recorded:
    """A publisher that keeps every message instead of sending it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def to_room(self, room: str, event: str, body: dict[str, Any]) -> None:
        self.sent.append(("room", event, body))

    async def to_watchers(self, room: str, event: str, body: dict[str, Any]) -> None:
        self.sent.append(("watchers", event, body))

    async def to_sockets(self, sids: Iterable[str], event: str, body: dict[str, Any]) -> None:
        self.sent.append(("sockets", event, body))

    async def enter(self, sid: str, room: str) -> None:
        pass

    async def leave(self, sid: str, room: str) -> None:
        pass

    def count(self, event: str) -> int:
        return sum(1 for _, name, _ in self.sent if name == event)


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(db_url, min_size=2, max_size=8)
    try:
        yield p
    finally:
        await p.close()


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
    questions = [mc(str(uuid.uuid4()), show_question_time=0, answering_time=60) for _ in range(2)]
    async with EventLog(pool) as events:
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
        await hub.join(runner, "dev-bob", "Bob")
        await runner.execute(Start(actor=runner.game.host_id))
        while runner.game.phase.value != "answering":
            await runner.execute(Next(actor=runner.game.host_id))
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
