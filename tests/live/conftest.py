"""The live-game layer in-process: a real PostgreSQL event log and game tables, and a
publisher that records what it would send (the port's real implementation is the sockets')."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg

from tests.game.helpers import mc, quiz
from tuiz.config import Settings
from tuiz.game.model import Next, Question, Start, SubmitAnswer
from tuiz.live.hub import GameHub
from tuiz.live.runner import GameRunner
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


def two_questions() -> list[Question]:
    """Long enough that real-time timers never fire during a test."""
    return [mc(str(uuid.uuid4()), show_question_time=0, answering_time=60) for _ in range(2)]


async def answering_game(
    pool: asyncpg.Pool, events: EventLog, published: Recorded, questions: list[Question]
) -> tuple[GameHub, GameRunner]:
    """A host-advanced game with no players yet, its first question open for answers once
    players join and the host starts (`open_first_question`)."""
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
    return hub, runner


async def open_first_question(runner: GameRunner) -> None:
    await runner.execute(Start(actor=runner.game.host_id))
    while runner.game.phase.value != "answering":
        await runner.execute(Next(actor=runner.game.host_id))


def answer(actor: str, question: Question, answer_id: str) -> SubmitAnswer:
    """`actor`'s answer "a" to `question`, with the client's answer id."""
    return SubmitAnswer(
        actor=actor, question_id=question.id, answer_id=answer_id, choice_ids=("a",), text=None
    )


@contextlib.asynccontextmanager
async def log_held(pool: asyncpg.Pool, game_id: uuid.UUID) -> AsyncIterator[None]:
    """Hold the game's log counter row: the log's next write of the game waits there (in the
    database, its statement sent) until the block ends."""
    async with pool.acquire() as blocker:
        tx = blocker.transaction()
        await tx.start()
        try:
            await blocker.execute(
                "SELECT 1 FROM public.game_event_counters WHERE game_id = $1 FOR UPDATE", game_id
            )
            yield
        finally:
            await tx.rollback()


async def writer_waiting(pool: asyncpg.Pool, query: str = "%") -> int | None:
    """The backend of a statement (its text LIKE `query`) waiting on a lock (for `eventually`)."""
    pid: int | None = await pool.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database() AND query LIKE $1",
        query,
    )
    return pid


async def waiting_on_locks(pool: asyncpg.Pool, n: int = 1) -> bool | None:
    """True once `n` statements of this database wait on a lock (for `eventually`)."""
    waiting: int = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database()"
    )
    return waiting >= n or None
