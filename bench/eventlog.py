"""Event-log benchmark: the seed's MAX()+1 function vs ours vs the group-commit writer.

    .venv/bin/python -m bench.eventlog [--database-url URL] [--seconds N] [--loop asyncio]

Without a URL it starts an embedded PostgreSQL (pgserver) in a temp dir. Either way it creates a
fresh database, applies the migrations, measures, prints a table and drops the database. Every
number is durable: an event counts once its transaction committed (with the server's own
`synchronous_commit`/`fsync`, printed in the header). Client and server share the machine, so
Python's CPU use is part of every figure; the load average is printed before and after, since
another busy process on a 2-core machine changes the numbers more than any tuning. It runs on
uvloop, as `tuiz serve` does. See bench/README.md for what each row models.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from tuiz.store import migrations
from tuiz.store.db import connect, create_pool
from tuiz.store.embedded import EmbeddedPostgres, database_url
from tuiz.store.events import EventLog, NewEvent, insert_batch, validate

PRODUCERS = 8
SOCKETS_PER_PRODUCER = 64  # in-flight appends per producer in the "sockets" rows
CHUNK = 100  # events per append_many call in the "append_many" rows
MAX_EVENTS = 2_000_000  # hard cap per scenario, whatever --seconds says
PACED_RATE = 5_000

# The reference design's function, verbatim in spirit: next number = MAX()+1, no constraint.
SEED_SCHEMA = """
CREATE SCHEMA bench_seed;
CREATE TABLE bench_seed.game_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    game_id uuid NOT NULL,
    event_type varchar(100) NOT NULL,
    socket_id varchar(255),
    device_id varchar(255),
    player_id uuid,
    user_id uuid,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    action varchar(255) NOT NULL,
    payload jsonb DEFAULT '{}',
    sequence_number integer NOT NULL
);
CREATE INDEX ON bench_seed.game_events (game_id);
CREATE INDEX ON bench_seed.game_events ("timestamp");
CREATE INDEX ON bench_seed.game_events (event_type);
CREATE INDEX ON bench_seed.game_events (player_id);
CREATE INDEX ON bench_seed.game_events (game_id, sequence_number);
CREATE FUNCTION bench_seed.log_game_event(
    p_game_id uuid, p_event_type varchar, p_action varchar,
    p_socket_id varchar DEFAULT NULL, p_device_id varchar DEFAULT NULL,
    p_player_id uuid DEFAULT NULL, p_user_id uuid DEFAULT NULL, p_payload jsonb DEFAULT '{}'
) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_sequence integer;
    v_id uuid;
BEGIN
    SELECT COALESCE(MAX(sequence_number), 0) + 1 INTO v_sequence
      FROM bench_seed.game_events WHERE game_id = p_game_id;
    INSERT INTO bench_seed.game_events (game_id, event_type, action, socket_id, device_id,
                                        player_id, user_id, payload, sequence_number)
    VALUES (p_game_id, p_event_type, p_action, p_socket_id, p_device_id,
            p_player_id, p_user_id, p_payload, v_sequence)
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;
"""

CALL_SQL = """
SELECT {fn}(p_game_id => $1, p_event_type => $2, p_action => $3, p_socket_id => $4,
            p_device_id => $5, p_payload => $6)
"""


class CpuMeter:
    """CPU seconds used by this process and by the PostgreSQL server (postmaster + children).

    CPU per event does not depend on what else the machine runs, unlike events/s: it says what a
    quiet machine could do (cores / CPU per event) when the wall-clock numbers are squeezed.
    """

    def __init__(self) -> None:
        self.server: psutil.Process | None = None

    async def attach(self, conn: asyncpg.Connection) -> None:
        """Find the server's postmaster when it runs on this machine and we may read its pid."""
        try:
            data_dir = await conn.fetchval("SHOW data_directory")
        except asyncpg.PostgresError:
            return
        self.server = self._postmaster(Path(data_dir))

    @staticmethod
    def _postmaster(data_dir: Path) -> psutil.Process | None:
        try:
            return psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))
        except (OSError, ValueError, IndexError, psutil.Error):
            return None

    def read(self) -> dict[int, float]:
        """{pid: cpu seconds}; pid 0 is this process."""
        own = psutil.Process().cpu_times()
        out = {0: own.user + own.system}
        if self.server is not None:
            for proc in [self.server, *self.server.children()]:
                try:
                    t = proc.cpu_times()
                except psutil.Error:
                    continue
                out[proc.pid] = t.user + t.system
        return out

    def since(self, before: dict[int, float]) -> tuple[float, float | None]:
        """(client, server) CPU seconds since `before`; new server processes count in full."""
        now = self.read()
        client = now[0] - before[0]
        if self.server is None:
            return client, None
        server = sum(v - before.get(pid, 0.0) for pid, v in now.items() if pid != 0)
        return client, server


METER = CpuMeter()


@dataclass
class Row:
    name: str
    events: int
    seconds: float
    latencies: list[float]
    duplicates: int | None = None
    gaps: int | None = None
    cpu: tuple[float, float | None] = (0.0, None)

    def cpu_per_event(self) -> str:
        if not self.events:
            return "-"
        client, server = self.cpu
        py = f"{client / self.events * 1e6:.1f}"
        return f"{py}/{'-' if server is None else f'{server / self.events * 1e6:.1f}'}"

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def payload(k: int, i: int) -> dict[str, Any]:
    """A typical answer event: ~120 bytes of JSON."""
    return {"questionId": f"q-{i % 20}", "answerId": i % 4, "elapsedMs": 1000 + i % 9000, "k": k}


def event(game: uuid.UUID, k: int, i: int) -> NewEvent:
    return NewEvent(
        game_id=game,
        event_type="game:answer:submit",
        action="submit",
        payload=payload(k, i),
        socket_id=f"sock-{k}",
        device_id=f"device-{k}",
    )


async def make_games(conn: asyncpg.Connection, n: int) -> list[uuid.UUID]:
    """Guest-hosted games in the lobby: the fewest columns the schema demands."""
    rows = await conn.fetch(
        """
        INSERT INTO public.games (game_code)
        SELECT (100000 + g)::text FROM generate_series(1, $1) AS g
        RETURNING id
        """,
        n,
    )
    return [r["id"] for r in rows]


async def sequence_check(conn: asyncpg.Connection, table: str, games: list[uuid.UUID]) -> Row:
    """Duplicates = rows whose number another row of the game already has; gaps = missing."""
    stats = await conn.fetchrow(
        f"""
        SELECT coalesce(sum(n - d), 0) AS dup, coalesce(sum(m - d), 0) AS gap
          FROM (SELECT count(*) AS n, count(DISTINCT sequence_number) AS d,
                       max(sequence_number) AS m
                  FROM {table} WHERE game_id = ANY($1) GROUP BY game_id) s
        """,
        games,
    )
    assert stats is not None
    return Row("", 0, 0, [], int(stats["dup"]), int(stats["gap"]))


async def run_all(
    workers: list[Callable[[], Awaitable[int]]],
) -> tuple[int, float, tuple[float, float | None]]:
    """Run the workers together; total events, wall time and CPU (client, server)."""
    cpu = METER.read()
    started = time.perf_counter()
    counts = await asyncio.gather(*(w() for w in workers))
    return sum(counts), time.perf_counter() - started, METER.since(cpu)


async def bench_sql_function(
    url: str, fn: str, table: str, game: uuid.UUID, seconds: float, name: str
) -> Row:
    """8 connections, each calling the function in a loop: how the seed's RPC is used."""
    conns = [await connect(url) for _ in range(PRODUCERS)]
    sql = CALL_SQL.format(fn=fn)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    cap = MAX_EVENTS // PRODUCERS

    def worker(k: int, conn: asyncpg.Connection) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            i = 0
            while i < cap and time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await conn.fetchval(
                    sql, game, "game:answer:submit", "submit", f"sock-{k}", f"device-{k}",
                    payload(k, i),
                )  # fmt: skip
                latencies.append(time.perf_counter() - t0)
                i += 1
            return i

        return run

    try:
        total, elapsed, cpu = await run_all([worker(k, c) for k, c in enumerate(conns)])
        check = await sequence_check(conns[0], table, [game])
    finally:
        for c in conns:
            await c.close()
    return Row(name, total, elapsed, latencies, check.duplicates, check.gaps, cpu)


async def bench_writer_sockets(
    log: EventLog, conn: asyncpg.Connection, games: list[uuid.UUID], seconds: float, name: str
) -> Row:
    """8 producers x 64 sockets; every socket awaits its event's commit before the next."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    sockets = PRODUCERS * SOCKETS_PER_PRODUCER
    cap = MAX_EVENTS // sockets

    def worker(k: int) -> Callable[[], Awaitable[int]]:
        game = games[k % len(games)]

        async def run() -> int:
            i = 0
            while i < cap and time.perf_counter() < deadline:
                ev = event(game, k, i)
                t0 = time.perf_counter()
                await log.append(ev)
                latencies.append(time.perf_counter() - t0)
                i += 1
            return i

        return run

    total, elapsed, cpu = await run_all([worker(k) for k in range(sockets)])
    check = await sequence_check(conn, "public.game_events", games)
    return Row(name, total, elapsed, latencies, check.duplicates, check.gaps, cpu)


async def bench_writer_chunks(
    log: EventLog, conn: asyncpg.Connection, games: list[uuid.UUID], seconds: float, name: str
) -> Row:
    """8 producers, each appending 100 events at a time (a round's answers or a broadcast)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    cap = MAX_EVENTS // PRODUCERS

    def worker(k: int) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            i = 0
            while i < cap and time.perf_counter() < deadline:
                chunk = [event(games[(k + j) % len(games)], k, i + j) for j in range(CHUNK)]
                t0 = time.perf_counter()
                await log.append_many(chunk)
                latency = time.perf_counter() - t0
                latencies.extend([latency] * CHUNK)
                i += CHUNK
            return i

        return run

    total, elapsed, cpu = await run_all([worker(k) for k in range(PRODUCERS)])
    check = await sequence_check(conn, "public.game_events", games)
    return Row(name, total, elapsed, latencies, check.duplicates, check.gaps, cpu)


async def bench_paced(
    log: EventLog, conn: asyncpg.Connection, games: list[uuid.UUID], seconds: float, name: str
) -> Row:
    """Open-loop load at PACED_RATE: latency counts from when the event was due, so a stall
    shows up in p99 instead of silently slowing the producers down."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    pending: set[asyncio.Task[None]] = set()
    interval = PRODUCERS / PACED_RATE
    total = min(int(PACED_RATE * seconds), MAX_EVENTS)

    async def one(ev: NewEvent, due: float) -> None:
        await log.append(ev)
        latencies.append(loop.time() - due)

    async def producer(k: int) -> int:
        game = games[k % len(games)]
        due = loop.time() + k * interval / PRODUCERS
        for i in range(total // PRODUCERS):
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(event(game, k, i), due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            due += interval
        return total // PRODUCERS

    cpu = METER.read()
    started = time.perf_counter()
    count = sum(await asyncio.gather(*(producer(k) for k in range(PRODUCERS))))
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - started
    used = METER.since(cpu)
    check = await sequence_check(conn, "public.game_events", games)
    return Row(name, count, elapsed, latencies, check.duplicates, check.gaps, used)


# -- batch strategies: the same durable batch written three ways on one connection ----------

COLUMNS = (
    "id", "game_id", "event_type", "action", "socket_id", "device_id", "player_id", "user_id",
    "payload", "sequence_number",
)  # fmt: skip
RESERVE_SQL = """
INSERT INTO public.game_event_counters AS c (game_id, last_seq) VALUES ($1, $2)
ON CONFLICT (game_id) DO UPDATE SET last_seq = c.last_seq + EXCLUDED.last_seq
RETURNING last_seq
"""
VALUES_SQL = f"""
INSERT INTO public.game_events ({", ".join(COLUMNS)})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)
"""


def _records(events: list[NewEvent], first: int) -> list[tuple[Any, ...]]:
    return [
        (uuid.uuid4(), e.game_id, e.event_type, e.action, e.socket_id, e.device_id,
         e.player_id, e.user_id, validate(e), first + n)
        for n, e in enumerate(events)
    ]  # fmt: skip


async def write_unnest(conn: asyncpg.Connection, events: list[NewEvent]) -> None:
    await insert_batch(conn, [(e, validate(e)) for e in events])


async def write_executemany(conn: asyncpg.Connection, events: list[NewEvent]) -> None:
    async with conn.transaction():
        last = await conn.fetchval(RESERVE_SQL, events[0].game_id, len(events))
        await conn.executemany(VALUES_SQL, _records(events, last - len(events) + 1))


async def write_copy(conn: asyncpg.Connection, events: list[NewEvent]) -> None:
    async with conn.transaction():
        last = await conn.fetchval(RESERVE_SQL, events[0].game_id, len(events))
        await conn.copy_records_to_table(
            "game_events",
            schema_name="public",
            columns=list(COLUMNS),
            records=_records(events, last - len(events) + 1),
        )


async def bench_strategy(
    url: str,
    game: uuid.UUID,
    write: Callable[[asyncpg.Connection, list[NewEvent]], Awaitable[None]],
    batch: int,
    seconds: float,
    name: str,
) -> Row:
    """One connection writing one game's batches back to back, each its own commit."""
    # COPY's binary format needs asyncpg's own jsonb codec (JSON text in), not the pool's.
    conn = await asyncpg.connect(url)
    latencies: list[float] = []
    total = 0
    deadline = time.perf_counter() + seconds
    cpu = METER.read()
    started = time.perf_counter()
    try:
        while total < MAX_EVENTS and time.perf_counter() < deadline:
            events = [event(game, 0, total + j) for j in range(batch)]
            t0 = time.perf_counter()
            await write(conn, events)
            latencies.append(time.perf_counter() - t0)
            total += batch
        elapsed = time.perf_counter() - started
        used = METER.since(cpu)
        check = await sequence_check(conn, "public.game_events", [game])
    finally:
        await conn.close()
    return Row(name, total, elapsed, latencies, check.duplicates, check.gaps, used)


# -- reporting ---------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(title: str, rows: list[Row], latency_label: str = "p50/p99 ms") -> None:
    print(f"\n{title}")
    head = (
        f"{'scenario':<58} {'events':>9} {'events/s':>9} {latency_label:>15} {'dup %':>6} "
        f"{'gaps':>5} {'cpu us/ev py/pg':>16}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        dup = None if r.duplicates is None or not r.events else 100 * r.duplicates / r.events
        lat = f"{_fmt(r.pct(0.5), '.2f')}/{_fmt(r.pct(0.99), '.2f')}"
        print(
            f"{r.name:<58} {r.events:>9} {r.rate:>9.0f} {lat:>15} {_fmt(dup, '.1f'):>6} "
            f"{_fmt(r.gaps, 'd'):>5} {r.cpu_per_event():>16}"
        )


async def server_info(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        version = await conn.fetchval("SHOW server_version")
        sync = await conn.fetchval("SHOW synchronous_commit")
        fsync = await conn.fetchval("SHOW fsync")
    finally:
        await conn.close()
    return f"PostgreSQL {version}, fsync={fsync}, synchronous_commit={sync}, cpus={os.cpu_count()}"


async def run(server_url: str, seconds: float, migrations_dir: Path | None) -> None:
    name = f"tuiz_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url(server_url, name)
    try:
        await migrations.upgrade(url, directory=migrations_dir)
        await measure(url, seconds)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


async def measure(url: str, seconds: float) -> None:
    print(await server_info(url))
    print(f"{PRODUCERS} producers, {seconds:g} s per scenario, durable (committed) events only")
    print(f"before: {load()}")
    conn = await connect(url)
    await METER.attach(conn)

    async def settle() -> None:
        """Each scenario starts after a checkpoint, so one's write debt doesn't land on the next."""
        await conn.execute("CHECKPOINT")

    try:
        await conn.execute(SEED_SCHEMA)
        games = await make_games(conn, 110)

        strategies: list[Row] = []
        for batch in (100, 1000):
            for label, write in (
                ("unnest CTE, 1 statement", write_unnest),
                ("executemany in tx (reserve, insert, commit)", write_executemany),
                ("COPY in tx (reserve, copy, commit)", write_copy),
            ):
                game = games.pop()
                await settle()
                strategies.append(
                    await bench_strategy(
                        url, game, write, batch, seconds / 2, f"{label}, batch {batch}"
                    )
                )
        print_table(
            "Batch write strategies (1 connection, 1 game, batches back to back)",
            strategies,
            "batch p50/p99",
        )

        await settle()
        seed = await bench_sql_function(
            url, "bench_seed.log_game_event", "bench_seed.game_events", games.pop(), seconds,
            "(a) seed log_game_event (MAX+1), 8 connections, 1 game",
        )  # fmt: skip
        await settle()
        ours = await bench_sql_function(
            url, "public.log_game_event", "public.game_events", games.pop(), seconds,
            "(b) our log_game_event (counter row), 8 connections, 1 game",
        )  # fmt: skip

        pool = await create_pool(url, min_size=4, max_size=8, generic_plans=True)  # as served
        writer: list[Row] = []
        try:
            async with EventLog(pool) as log:
                one, many = [games.pop()], [games.pop() for _ in range(100)]
                for label, bench, targets in (
                    ("1 game, 8x64 sockets, append", bench_writer_sockets, one),
                    ("100 games, 8x64 sockets, append", bench_writer_sockets, many),
                    (f"1 game, 8 producers, append_many({CHUNK})", bench_writer_chunks, one),
                    (f"100 games, 8 producers, append_many({CHUNK})", bench_writer_chunks, many),
                ):
                    batches = log.batches_written
                    await settle()
                    row = await bench(log, conn, targets, seconds, f"(c) EventLog {label}")
                    row.name += f" [{row.events / max(1, log.batches_written - batches):.0f}/b]"
                    writer.append(row)
                await settle()
                paced = await bench_paced(
                    log, conn, [games.pop()], seconds,
                    f"(d) EventLog paced {PACED_RATE}/s, 1 game, latency from due",
                )  # fmt: skip
        finally:
            await pool.close()
    finally:
        await conn.close()

    print(f"after: {load()}")
    rows = [seed, ours, *writer, paced]
    print_table("Event log, durable events", rows)
    best = max(writer, key=lambda r: r.rate)
    print(
        f"\nwriter 1 game (sockets) vs seed function: {writer[0].rate / seed.rate:.1f}x; "
        f"vs our SQL function: {writer[0].rate / ours.rate:.1f}x; "
        f"best writer row: {best.rate:.0f}/s"
    )
    for r in writer:
        client, server = r.cpu
        if server is not None and r.events:
            per_event = (client + server) / r.events
            print(
                f"{r.name}: {per_event * 1e6:.1f} us CPU per event (client + server) -> at most "
                f"{(os.cpu_count() or 1) / per_event:.0f}/s on {os.cpu_count()} idle cores"
            )
    seed_dup = 100 * (seed.duplicates or 0) / max(1, seed.events)
    print(f"seed function duplicate sequence numbers: {seed_dup:.1f} % of rows")
    worst_dup = max((r.duplicates or 0) for r in [ours, *writer, paced])
    print(
        f"targets: >= 40000 durable events/s with 0 duplicates -> "
        f"{'met' if best.rate >= 40000 and worst_dup == 0 else 'NOT met'} "
        f"({best.rate:.0f}/s, duplicates {worst_dup}); "
        f"p99 <= 20 ms at {PACED_RATE}/s -> "
        f"{'met' if (paced.pct(0.99) or 1e9) <= 20 else 'NOT met'} ({paced.pct(0.99):.2f} ms)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.eventlog", description=__doc__)
    parser.add_argument("--database-url", help="a superuser URL; default: embedded PostgreSQL")
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario (default 5)")
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop (uvloop)"
    )
    parser.add_argument("--migrations-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.database_url:
        asyncio.run(run(args.database_url, args.seconds, args.migrations_dir))
        return
    with tempfile.TemporaryDirectory(prefix="tuiz-bench-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata", cleanup="delete")
        url = server.start()
        try:
            asyncio.run(run(url, args.seconds, args.migrations_dir))
        finally:
            server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
