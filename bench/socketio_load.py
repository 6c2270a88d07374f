"""Socket.IO load benchmark: tuiz against a minimal Node.js Socket.IO 4.x anchor, same run.

    .venv/bin/python -m bench.socketio_load --clients 3000 --procs 4 --messages 50 \\
        [--targets tuiz,node] [--database-url URL] [--room-id UUID] [--pin]

For each target it starts the server on a free loopback port, starts `--procs` Node load
processes (bench/loadgen/clients.js, `--clients` receivers between them) and one sender
process, then measures, in order:

1. connect ramp: every receiver opens a Socket.IO connection and does `ws:connect` until
   `ws:connected` (bounded in-flight per process) -> clients/s and per-client latency;
2. join: every receiver sends `room:join` and waits for `room:joined`; the run then waits
   until the host (the sender's first socket) has been told of all N joins: as in a quiz
   room, receivers are players and presence (`room:user-joined`) goes to the host only;
3. idle memory: server process-tree RSS (/proc/PID/status VmRSS) after the sender alone is
   connected, and again after the receivers are connected and after they have joined, each
   after `--idle-seconds` of quiet -> KB per connection;
4. latency: `--warmup-messages` broadcasts first (reported apart: the load clients' first
   `room:message` handling is slow whatever the server), then `--messages` broadcasts from
   one sender at `--rate`/s -> latency to the LAST receiver of each broadcast (p50/p99
   across broadcasts), deliveries/s, missing deliveries;
5. burst (unless `--burst-messages 0`): `--burst-senders` senders at `--burst-rate`/s each
   (each under tuiz's per-connection rate limit) -> deliveries/s near saturation.

For tuiz the room is a real quiz room: `create_game` makes the game and seats every load
device in it (one `players` row per receiver, the host's row with is_host=true, the other
burst senders as players); the device ids are stable (`device_ids`, the same names as
bench/loadgen/clients.js). With `--room-id` the seats are the caller's business: a device
without a `players` row is a spectator and gets every presence event (N^2 again).

Then it prints a table with the tuiz/Node ratios and writes bench/results/socketio-<date>.json.
Everything is loopback only, bounded in count and time (`--timeout`), and every process it
started is stopped on the way out, also on Ctrl-C and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
NODE_SERVER = BENCH / "anchors" / "node-server.js"
CLIENTS_JS = BENCH / "loadgen" / "clients.js"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU, CLIENT_CPU = 0, 1  # with --pin


@dataclass(frozen=True)
class Options:
    clients: int
    procs: int
    messages: int
    warmup_messages: int
    rate: float
    burst_messages: int
    burst_senders: int
    burst_rate: float
    targets: tuple[str, ...]
    database_url: str | None
    room_id: str | None
    transport: str
    connect_concurrency: int
    join_concurrency: int
    heartbeat_ms: int
    idle_seconds: float
    pad: int
    pin: bool
    tuiz_env: tuple[str, ...]
    tuiz_ws: str | None
    tuiz_ws_deflate: str  # default | on | off
    timeout: float
    phase_timeout: float
    output: Path | None


# ---------------------------------------------------------------- process and /proc helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def tree_pids(pid: int) -> list[int]:
    """`pid` and all its live descendants, from /proc/PID/task/TID/children."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    text = Path(f"/proc/{current}/task/{task}/children").read_text()
                    stack.extend(int(c) for c in text.split())
    return found


def rss_kb(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time of the given live processes."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLK_TCK


def pinned(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


class Server:
    """A server process in its own session, stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, port: int, log: Path):
        self.name, self.process, self.port, self.log = name, process, port, log

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        return tree_pids(self.pid)

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def stop(self, grace: float = 20) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # leftovers in its group, if any
        if self.process.returncode is None:
            await self.process.wait()


class ClientProc:
    """One Node load process: JSON commands on stdin, JSON events on stdout."""

    def __init__(self, name: str, process: asyncio.subprocess.Process):
        self.name, self.process = name, process
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.errors: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "error":
                self.errors.append(str(event.get("message")))
            await self.events.put(event)
        await self.events.put({"event": "exit"})

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())

    async def expect(self, event: str, within: float) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                got = await self.events.get()
                if got["event"] == event:
                    return got
                if got["event"] == "exit":
                    raise RuntimeError(f"{self.name} exited: {self.errors[-3:]}")

    async def request(self, command: dict[str, Any], event: str, within: float) -> dict[str, Any]:
        self.send(command)
        return await self.expect(event, within)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                self.send({"cmd": "exit"})
                assert self.process.stdin is not None
                self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        self.reader.cancel()


# ---------------------------------------------------------------- starting the targets


async def start_node(opts: Options, workdir: Path) -> Server:
    port = free_port()
    log = workdir / "node-server.log"
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(NODE_SERVER),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            start_new_session=True,
            preexec_fn=pinned(SERVER_CPU if opts.pin else None),
        )
    server = Server("node", process, port, log)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            while line := await process.stdout.readline():
                if line.startswith(b"ready"):
                    break
            else:
                raise RuntimeError(f"node anchor exited:\n{server.tail()}")
    except BaseException:
        await server.stop()
        raise
    # Nothing more is printed, but keep the pipe drained anyway.
    asyncio.create_task(process.stdout.read())  # noqa: RUF006
    return server


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


async def start_tuiz(
    opts: Options,
    workdir: Path,
    database_url: str,
    *,
    module: str = "tuiz.cli",
    env_extra: dict[str, str] | None = None,
) -> Server:
    """`python -m tuiz.cli serve` (or another module taking the same arguments)."""
    port = free_port()
    log = workdir / "tuiz-server.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TUIZ_HOST": "127.0.0.1",
        "TUIZ_PORT": str(port),
        "TUIZ_LOG_FORMAT": "json",
        "TUIZ_DATA_DIR": str(workdir / "tuiz-data"),
        **dict(item.split("=", 1) for item in opts.tuiz_env),
        **(env_extra or {}),
    }
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *(["--ws", opts.tuiz_ws] if opts.tuiz_ws else []),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=pinned(SERVER_CPU if opts.pin else None),
        )
    server = Server("tuiz", process, port, log)
    try:
        async with asyncio.timeout(90):
            while not await asyncio.to_thread(http_ok, f"http://127.0.0.1:{port}/ready"):
                if process.returncode is not None:
                    raise RuntimeError(f"tuiz serve exited {process.returncode}:\n{server.tail()}")
                await asyncio.sleep(0.2)
    except BaseException:
        await server.stop()
        raise
    return server


@contextlib.asynccontextmanager
async def tuiz_database(opts: Options, workdir: Path) -> Any:
    """The given --database-url, or a private embedded PostgreSQL for this run."""
    if opts.database_url:
        yield opts.database_url, None
        return
    from tuiz.store.embedded import EmbeddedPostgres, ensure_database

    embedded = EmbeddedPostgres(workdir / "pgdata", cleanup="delete")
    server_url = await asyncio.to_thread(embedded.start)
    try:
        url = await ensure_database(server_url, "tuiz_bench")
        yield url, embedded.data_dir
    finally:
        await asyncio.to_thread(embedded.stop)


def postgres_pids(data_dir: Path | None) -> list[int]:
    if data_dir is None:
        return []
    with contextlib.suppress(OSError, ValueError, IndexError):
        return tree_pids(int((data_dir / "postmaster.pid").read_text().split()[0]))
    return []


def receiver_counts(opts: Options) -> list[int]:
    """Receivers per load process: `--clients` spread over `--procs`."""
    return [
        opts.clients // opts.procs + (1 if i < opts.clients % opts.procs else 0)
        for i in range(opts.procs)
    ]


def device_ids(opts: Options) -> tuple[str, list[str], list[str]]:
    """(host, other burst senders, receivers): the device ids bench/loadgen/clients.js uses.

    The sender process has index `--procs`; its client 0 is the room's host.
    """
    host = f"bench-sender-{opts.procs}-0"
    burst = [f"bench-burst-{opts.procs}-{i}" for i in range(1, max(1, opts.burst_senders))]
    receivers = [
        f"bench-receiver-{proc}-{i}"
        for proc, count in enumerate(receiver_counts(opts))
        for i in range(count)
    ]
    return host, burst, receivers


async def create_game(database_url: str, opts: Options) -> str:
    """A quiz room: a game row with a seat (`players` row) for every load device.

    tuiz accepts room:join only for an existing game; a device with a seat joins as a player
    (is_host=false) or the host (is_host=true), one without as a spectator. Receivers and the
    extra burst senders are players, the sender's first socket is the host, as in a real game.
    """
    import asyncpg

    sys.path.insert(0, str(ROOT))
    try:
        from tests.factories import make_game
    except ImportError as exc:
        raise RuntimeError(
            "tests/factories.py::make_game is not there yet; pass --room-id of an existing game"
        ) from exc
    host, burst, receivers = device_ids(opts)
    devices = [host, *burst, *receivers]
    conn = await asyncpg.connect(database_url)  # a superuser, as the factories expect
    try:
        async with conn.transaction():
            game_id = await make_game(conn)
            await conn.execute(
                """
                INSERT INTO public.players (game_id, device_id, player_name, is_host)
                SELECT $1, d, d, d = $3 FROM unnest($2::text[]) AS d
                """,
                game_id,
                devices,
                host,
            )
        # What autovacuum does after a bulk insert like this one (within its naptime): without
        # statistics the planner takes any index on game_id for a seat lookup by device, a
        # pass over the game's 3,000 seats per lookup. A server with autovacuum off (this
        # machine's shared one) would otherwise bench that instead of tuiz.
        await conn.execute(
            "ANALYZE public.games, public.players, public.room_participants,"
            " public.websocket_connections, public.device_sessions, public.game_events"
        )
        return str(game_id)
    finally:
        await conn.close()


async def start_clients(
    opts: Options, url: str, room_id: str, workdir: Path
) -> tuple[list[ClientProc], ClientProc]:
    transports = ["polling", "websocket"] if opts.transport == "both" else [opts.transport]
    counts = receiver_counts(opts)
    specs = [(f"receivers-{i}", "receiver", n, i) for i, n in enumerate(counts)]
    specs.append(("sender", "sender", max(1, opts.burst_senders), opts.procs))
    procs: list[ClientProc] = []
    try:
        for name, role, count, index in specs:
            config = {
                "url": url,
                "roomId": room_id,
                "count": count,
                "role": role,
                "index": index,
                "transports": transports,
                "connectConcurrency": opts.connect_concurrency,
                "joinConcurrency": opts.join_concurrency,
                "heartbeatMs": opts.heartbeat_ms,
                "maxSeconds": int(opts.timeout) + 60,
                "pad": opts.pad,
            }
            with (workdir / f"{name}.log").open("ab") as err:
                process = await asyncio.create_subprocess_exec(
                    "node",
                    str(CLIENTS_JS),
                    json.dumps(config),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=err,
                    limit=256 * 1024 * 1024,  # reports carry every latency
                    start_new_session=True,
                    preexec_fn=pinned(CLIENT_CPU if opts.pin else None),
                )
            procs.append(ClientProc(name, process))
        for proc in procs:
            await proc.expect("ready", 30)
    except BaseException:
        await asyncio.gather(*(p.stop() for p in procs))
        raise
    return procs[:-1], procs[-1]


# ---------------------------------------------------------------- the scenario


def ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 3)


def spans(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Connect or join figures from the per-process summaries."""
    ok = sum(r["ok"] for r in reports)
    firsts = [r["first"] for r in reports if r["first"] is not None]
    lasts = [r["last"] for r in reports if r["last"] is not None]
    latencies = [v for r in reports for v in r["latencies"]]
    duration = (max(lasts) - min(firsts)) / 1000 if firsts and lasts else None
    return {
        "ok": ok,
        "failed": sum(r["failed"] for r in reports),
        "seconds": round(duration, 3) if duration else None,
        "per_second": round(ok / duration, 1) if duration else None,
        "latency_p50_ms": ms(percentile(latencies, 50)),
        "latency_p99_ms": ms(percentile(latencies, 99)),
        "started_at": min(firsts) if firsts else None,
    }


class Usage:
    """CPU used by groups of processes from creation to the last `mark()` (or now).

    Marking when the last progress was seen keeps a trailing wait for stragglers out of the
    window, so the percentages are those of the busy part of a phase (100 % = one core).
    """

    def __init__(self, groups: dict[str, Callable[[], list[int]]]):
        self.groups = groups
        self.start = time.monotonic()
        self.before = self._read()
        self.marked: tuple[float, dict[str, float]] | None = None

    def _read(self) -> dict[str, float]:
        return {name: cpu_seconds(pids()) for name, pids in self.groups.items()}

    def mark(self) -> None:
        self.marked = (time.monotonic(), self._read())

    def percent(self) -> dict[str, float]:
        at, after = self.marked or (time.monotonic(), self._read())
        wall = max(at - self.start, 1e-9)
        return {
            f"{name}_cpu_pct": round(100 * (after[name] - self.before[name]) / wall, 1)
            for name in self.groups
        }


async def wait_counts(
    receivers: list[ClientProc],
    phase: str,
    key: str,
    expected: int,
    opts: Options,
    usage: Usage | None = None,
) -> int:
    """Poll the processes until `key` sums to `expected` or stops growing for 5 s."""
    deadline = time.monotonic() + opts.phase_timeout
    last_total, last_change = -1, time.monotonic()
    while True:
        replies = await asyncio.gather(
            *(r.request({"cmd": "count", "phase": phase}, "count", 30) for r in receivers)
        )
        total = sum(int(reply[key]) for reply in replies)
        now = time.monotonic()
        if total != last_total:
            last_total, last_change = total, now
            if usage is not None:
                usage.mark()
        if total >= expected or now - last_change > 5 or now > deadline:
            return total
        await asyncio.sleep(0.2)


async def broadcast_phase(
    phase: str,
    messages: int,
    rate: float,
    senders: int,
    receivers: list[ClientProc],
    sender: ClientProc,
    usage_groups: dict[str, Callable[[], list[int]]],
    opts: Options,
) -> dict[str, Any]:
    expected = messages * opts.clients
    usage = Usage(usage_groups)
    sent = await sender.request(
        {"cmd": "send", "phase": phase, "messages": messages, "rate": rate, "senders": senders},
        "sent",
        messages / (rate * senders) + 60,
    )
    await wait_counts(receivers, phase, "received", expected, opts, usage)
    cpu = usage.percent()
    reports = await asyncio.gather(
        *(r.request({"cmd": "report", "phase": phase}, "report", 60) for r in receivers)
    )
    counts = [0] * messages
    last_receiver = [0.0] * messages
    for report in reports:
        for seq, (count, latency) in enumerate(
            zip(report["counts"], report["maxLat"], strict=True)
        ):
            if count and seq < messages:
                counts[seq] += count
                last_receiver[seq] = max(last_receiver[seq], latency)
    complete = [lat for seq, lat in enumerate(last_receiver) if counts[seq] == opts.clients]
    every = [v for report in reports for v in report["lat"]]
    delivered = sum(counts)
    lasts = [r["last"] for r in reports if r["last"]]
    span = (max(lasts) - sent["first"]) / 1000 if lasts else None
    return {
        "messages": messages,
        "senders": sent["senders"],
        "offered_rate_per_s": round(rate * sent["senders"], 1),
        "send_seconds": round((sent["last"] - sent["first"]) / 1000, 3),
        "expected_deliveries": expected,
        "delivered": delivered,
        "missing": expected - delivered,
        "broadcasts_incomplete": sum(1 for c in counts if c < opts.clients),
        "last_receiver_p50_ms": ms(percentile(complete, 50)),
        "last_receiver_p99_ms": ms(percentile(complete, 99)),
        "last_receiver_max_ms": ms(max(complete)) if complete else None,
        # per broadcast, in send order: a steady climb means a backlog (offered > served)
        "last_receiver_by_seq_ms": [round(v / 1000, 1) for v in last_receiver[:200]],
        "delivery_p50_ms": ms(percentile(every, 50)),
        "delivery_p99_ms": ms(percentile(every, 99)),
        "deliveries_per_s": round(delivered / span, 1) if span else None,
        "span_seconds": round(span, 3) if span else None,
        "connected_after": sum(r["connected"] for r in reports),
        **cpu,
    }


async def settle_rss(server: Server, seconds: float) -> int:
    await asyncio.sleep(seconds)
    return rss_kb(server.pids())


async def scenario(
    opts: Options,
    server: Server,
    room_id: str,
    workdir: Path,
    pg_pids: Callable[[], list[int]],
    result: dict[str, Any],
) -> None:
    """Run the phases, filling `result` as they complete (a failure keeps what was measured)."""

    def phase(name: str) -> None:
        result["phase"] = name
        print(f"   {time.strftime('%H:%M:%S')} {name}", flush=True)

    url = f"http://127.0.0.1:{server.port}"
    receivers, sender = await start_clients(opts, url, room_id, workdir)
    everyone = [*receivers, sender]
    groups: dict[str, Callable[[], list[int]]] = {
        "server": server.pids,
        "clients": lambda: [p.pid for p in everyone],
    }
    if pg_pids():
        groups["postgres"] = pg_pids
    result.update(room_id=room_id, server_pid=server.pid)
    t = opts.phase_timeout
    try:
        phase("sender connect + join")
        await sender.request({"cmd": "connect"}, "connected", t)
        joined = await sender.request({"cmd": "join"}, "joined", t)
        if joined["ok"] < 1:
            raise RuntimeError(f"the sender could not join: {joined['counters']}")
        rss_base = await settle_rss(server, opts.idle_seconds)

        phase("connect ramp")
        usage = Usage(groups)
        replies = await asyncio.gather(
            *(r.request({"cmd": "connect"}, "connected", t) for r in receivers)
        )
        result["connect"] = {**spans(list(replies)), **usage.percent()}
        rss_connected = await settle_rss(server, opts.idle_seconds)

        phase("join + user-joined to the host")
        host_before = int(
            (await sender.request({"cmd": "count", "phase": "-"}, "count", t))["userJoined"]
        )
        usage = Usage(groups)
        began = time.time() * 1000
        replies = await asyncio.gather(
            *(r.request({"cmd": "join"}, "joined", t) for r in receivers)
        )
        join = spans(list(replies))
        n = join["ok"]
        to_host = await wait_counts([sender], "-", "userJoined", host_before + n, opts, usage)
        to_players = await wait_counts(receivers, "-", "userJoined", 0, opts)
        join.update(
            user_joined_expected=n,
            user_joined_delivered=to_host - host_before,
            user_joined_to_players=to_players,
            with_fanout_seconds=round((time.time() * 1000 - began) / 1000, 3),
            **usage.percent(),
        )
        result["join"] = join
        rss_joined = await settle_rss(server, opts.idle_seconds)
        usage = Usage(groups)
        await asyncio.sleep(opts.idle_seconds)
        result["idle"] = usage.percent()

        connected = result["connect"]["ok"]
        result["memory"] = {
            "rss_base_kb": rss_base,
            "rss_connected_kb": rss_connected,
            "rss_joined_kb": rss_joined,
            "kb_per_connection": round((rss_connected - rss_base) / max(connected, 1), 2),
            "kb_per_joined_connection": round((rss_joined - rss_base) / max(n, 1), 2),
        }
        if pg_pids():
            result["memory"]["postgres_rss_kb"] = rss_kb(pg_pids())

        if opts.warmup_messages > 0:
            phase("warm-up broadcasts")
            result["warmup"] = await broadcast_phase(
                "warmup", opts.warmup_messages, opts.rate, 1, receivers, sender, groups, opts
            )
        phase("latency broadcasts")
        result["latency"] = await broadcast_phase(
            "latency", opts.messages, opts.rate, 1, receivers, sender, groups, opts
        )
        if opts.burst_messages > 0:
            phase("burst broadcasts")
            result["burst"] = await broadcast_phase(
                "burst",
                opts.burst_messages,
                opts.burst_rate,
                opts.burst_senders,
                receivers,
                sender,
                groups,
                opts,
            )
        result["client_errors"] = [e for p in everyone for e in p.errors][:10]
        result["client_rss_kb"] = rss_kb(p.pid for p in everyone)
        result["phase"] = "done"
    finally:
        await server.stop()
        await asyncio.gather(*(p.stop() for p in everyone))


async def run_target(name: str, opts: Options, workdir: Path, result: dict[str, Any]) -> None:
    started = time.monotonic()
    # 1/5/15-minute load averages: on a shared machine, how busy it was around this target.
    result["loadavg_before"] = [round(x, 2) for x in os.getloadavg()]
    if name == "node":
        server = await start_node(opts, workdir)
        await scenario(opts, server, opts.room_id or "bench-room", workdir, list, result)
    elif name == "tuiz":
        async with tuiz_database(opts, workdir) as (database_url, pg_dir):
            server = await start_tuiz(
                opts,
                workdir,
                database_url,
                # An experiment `tuiz serve` has no flag for: the same server through
                # bench/sio_memory.py with uvicorn's ws_per_message_deflate forced on or off.
                **(
                    {}
                    if opts.tuiz_ws_deflate == "default"
                    else {
                        "module": "bench.sio_memory",
                        "env_extra": {
                            "TUIZ_BENCH_WS_DEFLATE": "1" if opts.tuiz_ws_deflate == "on" else "0",
                            "PYTHONPATH": str(ROOT),
                        },
                    }
                ),
            )
            try:
                room_id = opts.room_id or await create_game(database_url, opts)
            except BaseException:
                await server.stop()
                raise
            result["database"] = "given" if opts.database_url else "embedded"
            await scenario(opts, server, room_id, workdir, lambda: postgres_pids(pg_dir), result)
            result["database"] = "given" if opts.database_url else "embedded"
    else:
        raise ValueError(f"unknown target {name!r} (tuiz, node)")
    result["seconds"] = round(time.monotonic() - started, 1)
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------- report


ROWS: list[tuple[str, str, str, str]] = [
    # section, key, label, better
    ("connect", "per_second", "connect rate (clients/s)", "higher"),
    ("connect", "latency_p99_ms", "connect p99 (ms)", "lower"),
    ("join", "with_fanout_seconds", "join + user-joined to host (s)", "lower"),
    ("memory", "kb_per_connection", "KB / idle connection", "lower"),
    ("memory", "kb_per_joined_connection", "KB / idle connection in room", "lower"),
    ("warmup", "last_receiver_max_ms", "warm-up last receiver max (ms)", "lower"),
    ("latency", "last_receiver_p50_ms", "last receiver p50 (ms)", "lower"),
    ("latency", "last_receiver_p99_ms", "last receiver p99 (ms)", "lower"),
    ("latency", "delivery_p99_ms", "any receiver p99 (ms)", "lower"),
    ("latency", "deliveries_per_s", "deliveries/s at fixed rate", "higher"),
    ("latency", "missing", "missing deliveries", "lower"),
    ("latency", "server_cpu_pct", "server CPU % (latency phase)", "lower"),
    ("latency", "clients_cpu_pct", "clients CPU % (latency phase)", "info"),
    ("burst", "offered_rate_per_s", "burst broadcasts/s offered", "info"),
    ("burst", "deliveries_per_s", "burst deliveries/s", "higher"),
    ("burst", "last_receiver_p99_ms", "burst last receiver p99 (ms)", "lower"),
    ("burst", "missing", "burst missing deliveries", "lower"),
    ("burst", "server_cpu_pct", "server CPU % (burst)", "lower"),
    ("burst", "clients_cpu_pct", "clients CPU % (burst)", "info"),
]


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """tuiz / Node for every numeric row both targets have."""
    tuiz, node = results.get("tuiz", {}), results.get("node", {})
    found: dict[str, float] = {}
    for section, key, _, better in ROWS:
        a = tuiz.get(section, {}).get(key)
        b = node.get(section, {}).get(key)
        if better != "info" and isinstance(a, int | float) and isinstance(b, int | float) and b:
            found[f"{section}.{key}"] = round(a / b, 3)
    return found


def table(results: dict[str, dict[str, Any]], found: dict[str, float]) -> str:
    names = list(results)
    header = f"{'':34}" + "".join(f"{n:>14}" for n in names) + f"{'tuiz/node':>12}"
    lines = [header, "-" * len(header)]
    for section, key, label, _ in ROWS:
        cells = []
        for n in names:
            value = results[n].get(section, {}).get(key)
            cells.append(f"{value:>14,.1f}" if isinstance(value, int | float) else f"{'-':>14}")
        ratio = found.get(f"{section}.{key}")
        lines.append(
            f"{label:34}" + "".join(cells) + (f"{ratio:>11.3f}x" if ratio is not None else "")
        )
    for n in names:
        if "error" in results[n]:
            lines.append(f"{n}: FAILED: {results[n]['error'].splitlines()[0]}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node.stdout.strip(),
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


async def amain(opts: Options) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="tuiz-sio-bench-") as tmp:
        for name in opts.targets:
            workdir = Path(tmp) / name
            workdir.mkdir()
            print(f"== {name}: {opts.clients} clients in {opts.procs} processes", flush=True)
            results[name] = {}
            try:
                await run_target(name, opts, workdir, results[name])
            except Exception as exc:  # one target failing still reports the others
                logs = "\n".join(
                    f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:])
                    for p in sorted(workdir.glob("*.log"))
                )
                where = results[name].get("phase", "start")
                results[name]["error"] = f"{type(exc).__name__} in {where}: {exc}\n{logs}"
                print(f"   {name} failed in {where}: {type(exc).__name__}: {exc}", file=sys.stderr)
            print(json.dumps(results[name], indent=1)[:4000], flush=True)
    return results


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench.socketio_load", description=__doc__.split("\n")[0]
    )
    p.add_argument("--clients", type=int, default=3000, help="receiving clients (max 20000)")
    p.add_argument("--procs", type=int, default=4, help="client processes (max 32)")
    p.add_argument("--messages", type=int, default=50, help="broadcasts in the latency phase")
    p.add_argument("--rate", type=float, default=10, help="latency-phase broadcasts/s")
    p.add_argument(
        "--warmup-messages", type=int, default=10, help="broadcasts before the latency phase"
    )
    p.add_argument("--burst-messages", type=int, default=240, help="0 skips the burst phase")
    p.add_argument("--burst-senders", type=int, default=8)
    p.add_argument("--burst-rate", type=float, default=15, help="broadcasts/s per burst sender")
    p.add_argument("--targets", default="tuiz,node")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument("--room-id", help="tuiz: an existing game's id (default: make one)")
    p.add_argument("--transport", choices=["websocket", "polling", "both"], default="websocket")
    p.add_argument("--connect-concurrency", type=int, default=32, help="in flight per process")
    p.add_argument("--join-concurrency", type=int, default=4, help="in flight per process")
    p.add_argument("--heartbeat-ms", type=int, default=25000, help="ws:heartbeat per client")
    p.add_argument("--idle-seconds", type=float, default=5, help="quiet time before RSS reads")
    p.add_argument("--pad", type=int, default=64, help="extra bytes in each broadcast")
    p.add_argument("--pin", action="store_true", help="server on CPU 0, clients on CPU 1")
    p.add_argument(
        "--tuiz-env", action="append", default=[], metavar="KEY=VALUE", help="env for tuiz serve"
    )
    p.add_argument(
        "--tuiz-ws",
        choices=["websockets-sansio", "websockets", "wsproto"],
        help="uvicorn websocket implementation for tuiz serve (--ws; default: tuiz's own)",
    )
    p.add_argument(
        "--tuiz-ws-deflate",
        choices=["default", "on", "off"],
        default="default",
        help="experiment: force uvicorn's ws_per_message_deflate (default: as tuiz serve)",
    )
    p.add_argument("--timeout", type=float, default=1200, help="global limit, seconds")
    p.add_argument("--phase-timeout", type=float, default=300, help="limit per phase, seconds")
    p.add_argument("--output", type=Path, help="result file (default bench/results/...)")
    a = p.parse_args(argv)
    if not (1 <= a.clients <= 20000 and 1 <= a.procs <= 32 and 1 <= a.messages <= 10000):
        p.error("--clients 1..20000, --procs 1..32, --messages 1..10000")
    if not (0 < a.rate <= 100 and 0 < a.burst_rate <= 100 and 1 <= a.burst_senders <= 64):
        p.error("--rate and --burst-rate 0..100, --burst-senders 1..64")
    if a.pin and len(os.sched_getaffinity(0)) < 2:
        p.error("--pin needs 2 CPUs")
    if any("=" not in item for item in a.tuiz_env):
        p.error("--tuiz-env takes KEY=VALUE")
    targets = tuple(t.strip() for t in a.targets.split(",") if t.strip())
    return Options(
        clients=a.clients,
        procs=min(a.procs, a.clients),
        messages=a.messages,
        warmup_messages=max(0, min(a.warmup_messages, 1000)),
        rate=a.rate,
        burst_messages=max(0, min(a.burst_messages, 10000)),
        burst_senders=a.burst_senders,
        burst_rate=a.burst_rate,
        targets=targets,
        database_url=a.database_url,
        room_id=a.room_id,
        transport=a.transport,
        connect_concurrency=max(1, a.connect_concurrency),
        join_concurrency=max(1, a.join_concurrency),
        heartbeat_ms=a.heartbeat_ms,
        idle_seconds=a.idle_seconds,
        pad=max(0, a.pad),
        pin=a.pin,
        tuiz_env=tuple(a.tuiz_env),
        tuiz_ws=a.tuiz_ws,
        tuiz_ws_deflate=a.tuiz_ws_deflate,
        timeout=a.timeout,
        phase_timeout=a.phase_timeout,
        output=a.output,
    )


T = TypeVar("T")


def run_bounded(work: Callable[[], Awaitable[T]], timeout: float) -> tuple[T | None, int]:
    """Run a benchmark under its global timeout, cancelled by SIGINT/SIGTERM (its own cleanup
    stops every process it started); returns (result, 0) or (None, the exit code)."""

    async def guarded() -> T:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        async with asyncio.timeout(timeout):
            return await work()

    try:
        return asyncio.run(guarded()), 0
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted; every process started was stopped", file=sys.stderr)
        return None, 130
    except TimeoutError:
        print(f"global timeout {timeout}s reached; processes stopped", file=sys.stderr)
        return None, 124


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    fd_limit = raise_fd_limit()
    if fd_limit < opts.clients + 1000:
        print(f"open-files limit {fd_limit} is low for {opts.clients} clients", file=sys.stderr)

    results, code = run_bounded(lambda: amain(opts), opts.timeout)
    if results is None:
        return code
    found = ratios(results)
    print()
    print(table(results, found))
    stamp = datetime.now().astimezone()
    path = opts.output or RESULTS / f"socketio-{stamp:%Y-%m-%dT%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "socketio_load",
        "date": stamp.isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.socketio_load", *(argv or sys.argv[1:])]),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "machine": machine(),
        "results": results,
        "ratios_tuiz_over_node": found,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
