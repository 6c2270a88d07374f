"""The event log when its connection dies under it: the batch fails with UNAVAILABLE, the
flusher lives on, and a game's later ordered events wait for `resume` (no decision is written
whose premise was lost).

The flusher's backend is ended with `pg_terminate_backend` while its batch waits on a row lock
we hold, so the failure hits a batch in flight, every time, on the shared test server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.factories import make_game
from tests.sioclient import eventually
from tuiz.errors import ErrorCode, TuizError
from tuiz.store.db import create_pool
from tuiz.store.events import EventLog, NewEvent


@pytest.fixture
async def log(db_url: str) -> AsyncIterator[EventLog]:
    pool = await create_pool(db_url, min_size=1, max_size=4)
    try:
        async with EventLog(pool, flushers=1) as event_log:
            yield event_log
    finally:
        await pool.close()


def ev(game: uuid.UUID, n: int) -> NewEvent:
    return NewEvent(game, "test:event", "append", {"n": n})


async def _waiting_writer(conn: asyncpg.Connection) -> int | None:
    """The pid of the log's backend once it waits for our lock."""
    pid: int | None = await conn.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database() AND pid <> pg_backend_pid()"
    )
    return pid


async def _seqs(conn: asyncpg.Connection, game: uuid.UUID) -> list[tuple[int, Any]]:
    rows = await conn.fetch(
        "SELECT sequence_number, payload->>'n' FROM game_events WHERE game_id = $1 ORDER BY 1",
        game,
    )
    return [(r[0], r[1]) for r in rows]


async def test_a_lost_connection_fails_its_batch_fences_the_game_and_the_log_goes_on(
    conn: asyncpg.Connection, log: EventLog
) -> None:
    game, other = await make_game(conn), await make_game(conn)
    await log.append_many([ev(game, 1)], ordered=True)  # the counter row exists now
    blocker = conn.transaction()
    await blocker.start()
    await conn.execute("SELECT 1 FROM game_event_counters WHERE game_id = $1 FOR UPDATE", game)
    try:
        in_flight = asyncio.create_task(log.append_many([ev(game, 2)], ordered=True))
        pid = await eventually(lambda: _waiting_writer(conn))
        assert pid is not None, "the log's batch never reached the database"
        # Queued behind the batch in flight: decided against event 2.
        queued_ordered = asyncio.create_task(log.append_many([ev(game, 3)], ordered=True))
        queued_plain = asyncio.create_task(log.append(ev(other, 1)))
        await eventually(lambda: _queued(log))
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await blocker.rollback()

    for task in (in_flight, queued_ordered):
        with pytest.raises(TuizError) as refused:
            await task
        assert refused.value.code is ErrorCode.UNAVAILABLE
    assert (await queued_plain).seq == 1  # another game's event: written on a fresh connection

    # Fenced: the game's ordered events wait for its owner to reload it...
    with pytest.raises(TuizError) as fenced:
        await log.append_many([ev(game, 4)], ordered=True)
    assert fenced.value.code is ErrorCode.UNAVAILABLE
    assert (await log.append(ev(game, 5))).seq == 2  # (room events are not ordered)
    # ...and are welcome again once it has.
    log.resume(game)
    assert [e.seq for e in await log.append_many([ev(game, 6)], ordered=True)] == [3]
    assert await _seqs(conn, game) == [(1, "1"), (2, "5"), (3, "6")]
    assert log.healthy


async def _queued(log: EventLog) -> bool:
    return log.queued >= 2
