"""The group-commit event log on real PostgreSQL: gapless, unique, ordered numbering per game
under tasks, processes and SQL callers at once; a bad event fails only its own caller."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import textwrap
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.factories import make_game, make_player
from tuiz.errors import ErrorCode, TuizError
from tuiz.store.events import PAYLOAD_MAX_BYTES, EventLog, NewEvent, StoredEvent

pytestmark = pytest.mark.live_pool  # the live layer: its statements run with generic plans


@pytest.fixture
async def log(pool: asyncpg.Pool) -> AsyncIterator[EventLog]:
    async with EventLog(pool) as event_log:
        yield event_log


def ev(game: uuid.UUID, **payload: Any) -> NewEvent:
    return NewEvent(game, "test:event", "append", payload, socket_id="s-1", device_id="dev-1")


async def stored_seqs(conn: asyncpg.Connection, game: uuid.UUID) -> list[int]:
    rows = await conn.fetch(
        "SELECT sequence_number FROM game_events WHERE game_id = $1 ORDER BY sequence_number",
        game,
    )
    return [r[0] for r in rows]


def assert_increasing(seqs: list[int]) -> None:
    assert all(a < b for a, b in itertools.pairwise(seqs)), seqs


async def test_eight_tasks_one_game_are_numbered_1_to_8000(
    conn: asyncpg.Connection, log: EventLog
) -> None:
    game = await make_game(conn)

    async def task(t: int) -> list[StoredEvent]:
        return [await log.append(ev(game, t=t, i=i)) for i in range(1000)]

    results = await asyncio.gather(*(task(t) for t in range(8)))

    assert await stored_seqs(conn, game) == list(range(1, 8001))
    for events in results:
        assert_increasing([e.seq for e in events])
    returned = {e.id: e.seq for events in results for e in events}
    rows = await conn.fetch("SELECT id, sequence_number FROM game_events WHERE game_id = $1", game)
    assert {r["id"]: r["sequence_number"] for r in rows} == returned
    counter = await conn.fetchval(
        "SELECT last_seq FROM game_event_counters WHERE game_id = $1", game
    )
    assert counter == 8000
    assert log.events_written == 8000
    assert log.events_failed == 0
    assert 0 < log.batches_written <= 8000
    assert log.last_batch_size >= 1
    assert log.last_batch_latency > 0


# A second OS process: its own pool and EventLog, started on "go" so all writers overlap.
CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, uuid
    from tuiz.store.db import create_pool
    from tuiz.store.events import EventLog, NewEvent

    async def main(url, game, proc, tasks, count):
        pool = await create_pool(url, min_size=2, max_size=4)
        async with EventLog(pool) as log:
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

            async def task(t):
                seqs = []
                for i in range(0, count, 10):
                    if i % 20:
                        batch = [NewEvent(game, "test:event", "append", {"p": proc, "t": t,
                                 "i": j}) for j in range(i, i + 10)]
                        seqs += [e.seq for e in await log.append_many(batch)]
                    else:
                        for j in range(i, i + 10):
                            e = await log.append(NewEvent(game, "test:event", "append",
                                                          {"p": proc, "t": t, "i": j}))
                            seqs.append(e.seq)
                return seqs

            results = await asyncio.gather(*(task(t) for t in range(tasks)))
        await pool.close()
        print(json.dumps(results), flush=True)

    asyncio.run(main(sys.argv[1], uuid.UUID(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                     int(sys.argv[5])))
    """
)


async def test_two_processes_and_sql_callers_share_one_gapless_sequence(
    db_url: str, conn: asyncpg.Connection
) -> None:
    game = await make_game(conn)
    tasks, per_task, sql_callers, per_caller = 4, 1000, 4, 250
    args = [str(game), "{proc}", str(tasks), str(per_task)]
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            db_url,
            *(a.format(proc=p) for a in args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for p in range(2)
    ]
    for child in children:
        assert child.stdout is not None
        assert (await child.stdout.readline()).strip() == b"ready"

    async def sql_caller(k: int) -> list[int]:
        c = await asyncpg.connect(db_url)
        try:
            out = []
            for i in range(per_caller):
                await c.execute(
                    "SELECT public.log_game_event(p_game_id => $1, p_event_type => 'sql',"
                    " p_action => 'call', p_payload => $2::jsonb)",
                    game,
                    json.dumps({"p": "sql", "t": k, "i": i}),
                )
                out.append(i)
            return out
        finally:
            await c.close()

    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    callers = asyncio.gather(*(sql_caller(k) for k in range(sql_callers)))
    outputs = await asyncio.gather(*(child.communicate() for child in children))
    await callers
    assert [child.returncode for child in children] == [0, 0]

    total = 2 * tasks * per_task + sql_callers * per_caller
    assert await stored_seqs(conn, game) == list(range(1, total + 1))
    for out, _ in outputs:
        for seqs in json.loads(out.decode().strip().splitlines()[-1]):
            assert len(seqs) == per_task
            assert_increasing(seqs)
    # Every writer's events are stored in its own order, interleaved with the others'.
    rows = await conn.fetch(
        "SELECT payload FROM game_events WHERE game_id = $1 ORDER BY sequence_number", game
    )
    by_writer: dict[tuple[Any, Any], list[int]] = defaultdict(list)
    for r in rows:
        by_writer[(r["payload"]["p"], r["payload"]["t"])].append(r["payload"]["i"])
    assert len(by_writer) == 2 * tasks + sql_callers
    for order in by_writer.values():
        assert order == sorted(order)


async def test_many_games_at_once_each_gapless(conn: asyncpg.Connection, log: EventLog) -> None:
    games = [await make_game(conn) for _ in range(40)]

    async def task(t: int) -> list[StoredEvent]:
        out: list[StoredEvent] = []
        for i in range(0, 400, 40):
            # One append_many spanning every game: split across flushers, still in order.
            out += await log.append_many(
                [ev(games[(t + j) % len(games)], t=t, i=i + j) for j in range(40)]
            )
        return out

    results = await asyncio.gather(*(task(t) for t in range(10)))

    for game in games:
        assert await stored_seqs(conn, game) == list(range(1, 101))
    for events in results:
        per_game: dict[uuid.UUID, list[int]] = defaultdict(list)
        for e in events:
            per_game[e.game_id].append(e.seq)
        for seqs in per_game.values():
            assert_increasing(seqs)


async def test_bad_events_fail_only_their_callers_and_write_nothing(
    conn: asyncpg.Connection, log: EventLog
) -> None:
    game, other_game = await make_game(conn), await make_game(conn)
    player = await make_player(conn, game, "device-a", "Ann")
    stranger = await make_player(conn, other_game, "device-b", "Bob")
    unknown_game, unknown_player = uuid.uuid4(), uuid.uuid4()
    events = [ev(game, i=i) for i in range(200)]
    events[10] = NewEvent(game, "test:event", "append", {"i": 10}, player_id=player)
    bad = {
        50: ev(unknown_game, i=50),
        120: NewEvent(game, "test:event", "append", {"i": 120}, player_id=unknown_player),
        150: NewEvent(game, "test:event", "append", {"i": 150}, player_id=stranger),
    }
    for index, event in bad.items():
        events[index] = event

    # Appends queued in one loop turn land in one batch; the batch must be split around them.
    results = await asyncio.gather(*(log.append(e) for e in events), return_exceptions=True)

    for index in bad:
        error = results[index]
        assert isinstance(error, TuizError), error
        assert error.code is ErrorCode.NOT_FOUND
    good = [r for i, r in enumerate(results) if i not in bad]
    assert all(isinstance(r, StoredEvent) for r in good)
    assert [r.seq for r in good if isinstance(r, StoredEvent)] == list(range(1, 198))
    assert await stored_seqs(conn, game) == list(range(1, 198))
    assert log.events_failed == len(bad)
    assert not await conn.fetchval(
        "SELECT count(*) FROM game_events WHERE game_id = ANY($1) OR player_id = ANY($2)",
        [unknown_game, other_game],
        [unknown_player, stranger],
    )
    assert not await conn.fetchval(
        "SELECT count(*) FROM game_event_counters WHERE game_id = ANY($1)",
        [unknown_game, other_game],
    )
    assert await conn.fetchval("SELECT player_id FROM game_events WHERE payload->>'i' = '10'") == (
        player
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"payload": ["not", "an", "object"]}, ErrorCode.VALIDATION_ERROR),
        ({"payload": {"x": {1, 2}}}, ErrorCode.VALIDATION_ERROR),
        ({"payload": {"x": "nul\x00"}}, ErrorCode.VALIDATION_ERROR),
        ({"payload": {"x": "a" * PAYLOAD_MAX_BYTES}}, ErrorCode.PAYLOAD_TOO_LARGE),
        ({"event_type": ""}, ErrorCode.VALIDATION_ERROR),
        ({"event_type": "e" * 101}, ErrorCode.VALIDATION_ERROR),
        ({"action": "a" * 256}, ErrorCode.VALIDATION_ERROR),
        ({"socket_id": "s" * 256}, ErrorCode.VALIDATION_ERROR),
        ({"device_id": ""}, ErrorCode.VALIDATION_ERROR),
        ({"device_id": "   "}, ErrorCode.VALIDATION_ERROR),
        ({"device_id": "dev 1"}, ErrorCode.VALIDATION_ERROR),
        ({"device_id": "___"}, ErrorCode.VALIDATION_ERROR),
        ({"device_id": "d" * 10_000}, ErrorCode.VALIDATION_ERROR),
        ({"game_id": "not-a-uuid"}, ErrorCode.VALIDATION_ERROR),
    ],
)
async def test_invalid_input_fails_fast_and_queues_nothing(
    conn: asyncpg.Connection, log: EventLog, change: dict[str, Any], code: ErrorCode
) -> None:
    game = await make_game(conn)
    fields: dict[str, Any] = {
        "game_id": game,
        "event_type": "test:event",
        "action": "append",
        "payload": {},
        "device_id": "dev-1",
        **change,
    }
    with pytest.raises(TuizError) as raised:
        await log.append(NewEvent(**fields))
    assert raised.value.code is code
    with pytest.raises(TuizError):
        await log.append_many([ev(game, i=0), NewEvent(**fields)])
    assert log.queued == 0
    assert log.batches_written == 0
    assert await conn.fetchval("SELECT count(*) FROM game_events") == 0


async def test_close_flushes_everything_queued_then_refuses(
    conn: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    game = await make_game(conn)
    log = EventLog(pool, max_batch=64)
    await log.start()

    # gather starts the appends before close() runs, so they are queued when it is called.
    *stored, _ = await asyncio.gather(*(log.append(ev(game, i=i)) for i in range(500)), log.close())

    assert [e.seq for e in stored] == list(range(1, 501))
    assert await stored_seqs(conn, game) == list(range(1, 501))
    assert log.queued == 0
    assert log.batches_written >= 500 // 64
    with pytest.raises(TuizError) as raised:
        await log.append(ev(game, i=501))
    assert raised.value.code is ErrorCode.UNAVAILABLE


async def test_read_pages_by_seq(conn: asyncpg.Connection, log: EventLog) -> None:
    game, other = await make_game(conn), await make_game(conn)
    player = uuid.uuid4()
    written = await log.append_many(
        [
            NewEvent(game, "game:answer", "submit", {"i": i, "nested": {"ok": True}},
                     socket_id=f"s-{i}", device_id="device_1", user_id=player)
            for i in range(250)
        ]
    )  # fmt: skip
    await log.append(ev(other, i=0))

    pages = [await log.read(game, after, limit=100) for after in (0, 100, 200, 250)]

    assert [[e.seq for e in page] for page in pages] == [
        list(range(1, 101)),
        list(range(101, 201)),
        list(range(201, 251)),
        [],
    ]
    assert [e for page in pages for e in page] == written
    with pytest.raises(TuizError):
        await log.read(game, 0, limit=0)


async def test_event_ids_are_time_ordered(conn: asyncpg.Connection, log: EventLog) -> None:
    """Version-7 ids: a later batch's rows sort after an earlier one's in the primary key (a
    random key writes a random index page per row)."""
    game = await make_game(conn)
    first = await log.append_many([ev(game, i=i) for i in range(50)])
    tick = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 == tick:  # the next millisecond: a clock, not an event
        pass
    second = await log.append_many([ev(game, i=i) for i in range(50, 100)])

    ids = [uuid.UUID(str(e.id)) for e in (*first, *second)]
    assert {(i.version, i.variant) for i in ids} == {(7, uuid.RFC_4122)}
    millis = [int.from_bytes(i.bytes[:6], "big") for i in ids]
    assert tick - 60_000 < min(millis) and max(millis) <= time.time_ns() // 1_000_000
    rows = await conn.fetch(
        "SELECT sequence_number FROM game_events WHERE game_id = $1 ORDER BY id", game
    )
    assert sorted(r[0] for r in rows[:50]) == list(range(1, 51))
