"""Live-game load benchmark: a whole quiz game with N simulated players over real sockets.

    flock /tmp/tuiz-bench.lock .venv/bin/python -m bench.game_load --players 1000 --procs 4 \\
        --questions 5 [--database-url URL] [--sweep 250,500,1000,2000] [--profile game|join] \\
        [--modes single,cluster,cluster-kill]

For each game size it starts `tuiz serve` (TUIZ_LOAD_SAMPLE=false) on a free loopback port
against a private embedded PostgreSQL (or `--database-url`), imports a quiz of `--questions`
multiple-choice questions (no question preview, `--answering-time` s to answer), creates the
game with `POST /games` (auto_advance off: this process is the host and drives every phase
over a python-socketio connection), then starts `--procs` Node processes
(bench/loadgen/players.js) holding the players, and:

1. connect: every player opens a websocket and registers (`ws:connect`);
2. join: `game:join {pin, nickname}` with an ack, then waits for the lobby's
   `game:player-joined` fan-out to be delivered (N(N-1)/2 messages);
3. game: for each question the host sends `game:flow:start` / `game:flow:next`; every player
   receives `game:question:started` (phase answering), waits a seeded uniform 0..`--think` s
   and submits with a client answer id; the question closes early when all have answered;
   the host then goes to the leaderboard and on, with `--pause` s on each host-driven screen;
4. checks: acked answers against the event log (`game:answer:accepted` rows) and
   `game_player_data.answer_report`; every final score in `game_player_data` against
   `/games/{id}/leaderboard` and against the score each player was last told.

Figures: answer ack latency (emit -> ack callback, ack only once durable) p50/p99 over every
answer; question-start latency to the last player (`max(receive) - startsAt` per question)
p99 over the questions; answers sent / acked / in the database / lost; CPU % of server,
PostgreSQL and clients during the game. Targets: ack p99 <= 100 ms, broadcast p99 <= 200 ms,
0 lost. Prints a table (one row per size) and writes bench/results/game-<date>.json.

Modes (`--modes`, each size runs once per mode, in order, so they compare on one machine state):
`single` is the above; `cluster` starts Redis, three `tuiz serve` processes (TUIZ_NODE n1..n3)
and nginx with the project's deploy/nginx.conf (the runners of tests/cluster/lb.py), creates
the game and connects every socket through nginx (the players spread over the three processes
round-robin; the host lands on one that does not own the game), so most commands are forwarded
to the owner over Redis; `cluster-kill` is `cluster` with the owner killed (SIGKILL) `--think`/2
s into question `--kill-question`: players whose socket dropped reconnect through nginx and
rejoin, answers refused meanwhile are sent again with the same answer id, and the run reports
the time from the kill to the game's lease held by another process (`takeover_ms`), to the
first answer acknowledged after the kill (`resume_ms`), the rejoins, and answers lost (acked
but not in the log; must be 0).

Loopback only; bounded (`--timeout` overall, `--phase-timeout` per phase, every Node process
exits by itself after the global limit); every process started is stopped on success, error,
timeout and Ctrl-C. Run it under `flock /tmp/tuiz-bench.lock` so it never overlaps another
benchmark on the same machine (`make bench-game` does).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.socketio_load import (
    ClientProc,
    Server,
    Usage,
    cpu_seconds,
    machine,
    percentile,
    postgres_pids,
    raise_fd_limit,
    run_bounded,
)
from bench.socketio_load import start_tuiz as socketio_start_tuiz

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PLAYERS_JS = BENCH / "loadgen" / "players.js"
TARGET_ACK_P99_MS = 100.0
TARGET_BROADCAST_P99_MS = 200.0
MAX_PLAYERS = 10_000  # the engine's max_players limit
LEADERBOARD_LIMIT = 5000  # rows one GET /games/{id}/leaderboard returns at most


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...]
    procs: int
    questions: int
    choices: int
    answering_time: int
    think: float
    pause: float
    seed: int
    connect_concurrency: int
    join_concurrency: int
    database_url: str | None
    tuiz_env: tuple[str, ...]
    profile: str | None  # "game" or "join": py-spy the server during that phase
    profile_seconds: float
    gc_probe: bool
    timeout: float
    phase_timeout: float
    output: Path | None
    modes: tuple[str, ...] = ("single",)
    kill_question: int = 1


def ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 1)


def stamp() -> str:
    return time.strftime("%H:%M:%S")


# ---------------------------------------------------------------- server and database


GC_PROBE = """\
# Written by bench/game_load.py --gc-probe: log this process's garbage-collection pauses >= 10 ms.
import gc, os, time
_out = open(os.environ["GCPROBE_OUT"], "a", buffering=1)
_t = [0.0]
def _cb(phase, info):
    if phase == "start":
        _t[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _t[0]) * 1000
    if ms >= 10:
        _out.write(f"{time.time() * 1000:.0f} {info['generation']} {ms:.1f} {info['collected']}\\n")
gc.callbacks.append(_cb)
"""


def gc_probe_env(workdir: Path) -> dict[str, str]:
    """A sitecustomize on the server's PYTHONPATH that times its GC pauses (no change to src)."""
    probe = workdir / "gcprobe"
    probe.mkdir(exist_ok=True)
    (probe / "sitecustomize.py").write_text(GC_PROBE)
    return {"PYTHONPATH": str(probe), "GCPROBE_OUT": str(workdir / "gc-pauses.log")}


def gc_pauses(workdir: Path, since_ms: float, until_ms: float) -> dict[str, Any]:
    """GC pauses >= 10 ms logged by the probe between two wall-clock times (ms)."""
    pauses: list[tuple[int, float]] = []
    with contextlib.suppress(OSError):
        for line in (workdir / "gc-pauses.log").read_text().splitlines():
            at, generation, pause, _collected = line.split()
            if since_ms <= float(at) <= until_ms:
                pauses.append((int(generation), float(pause)))
    full = [p for g, p in pauses if g == 2]
    return {
        "pauses_over_10ms": len(pauses),
        "total_s": round(sum(p for _, p in pauses) / 1000, 2),
        "gen2_count": len(full),
        "gen2_mean_ms": round(sum(full) / len(full), 1) if full else None,
        "max_ms": max((p for _, p in pauses), default=None),
    }


async def start_tuiz(opts: Options, workdir: Path, database_url: str) -> Server:
    """The Socket.IO bench's server start (same flags and readiness wait), no sample quiz."""
    serve_options = SimpleNamespace(tuiz_env=opts.tuiz_env, tuiz_ws=None, pin=False)
    return await socketio_start_tuiz(
        serve_options,  # the three fields start_tuiz reads
        workdir,
        database_url,
        env_extra={
            "TUIZ_LOAD_SAMPLE": "false",
            # every simulated phone joins from loopback: one address, no per-address limits
            "TUIZ_PIN_LOOKUP_LIMIT_PER_MIN": "0",
            "TUIZ_JOIN_LIMIT_PER_MIN": "0",
            **(gc_probe_env(workdir) if opts.gc_probe else {}),
        },
    )


@contextlib.asynccontextmanager
async def database(opts: Options, workdir: Path) -> AsyncIterator[tuple[str, Path | None]]:
    """The given --database-url, or a private embedded PostgreSQL kept for the whole run."""
    if opts.database_url:
        yield opts.database_url, None
        return
    from tuiz.store.embedded import EmbeddedPostgres, ensure_database

    embedded = EmbeddedPostgres(workdir / "pgdata", cleanup="delete")
    server_url = await asyncio.to_thread(embedded.start)
    try:
        yield await ensure_database(server_url, "tuiz_bench"), embedded.data_dir
    finally:
        await asyncio.to_thread(embedded.stop)


def quiz_document(opts: Options) -> dict[str, Any]:
    questions = []
    for i in range(opts.questions):
        correct = i % opts.choices
        questions.append(
            {
                "question_text": f"Benchmark question {i + 1}?",
                "question_type": "multiple_choice",
                "show_question_time": 0,
                "answering_time": opts.answering_time,
                "points": 1000,
                "answers": [
                    {"answer_text": f"Choice {c + 1}", "is_correct": c == correct}
                    for c in range(opts.choices)
                ],
            }
        )
    return {
        "version": 1,
        "title": f"Benchmark quiz ({opts.questions} questions)",
        "status": "published",
        "is_public": True,
        "questions": questions,
    }


async def import_bench_quiz(database_url: str, opts: Options) -> uuid.UUID:
    """The quiz, owned by a fresh auth.users row, through the same import as `tuiz quiz import`."""
    import asyncpg

    from tuiz.store.quizzes import import_quiz

    conn = await asyncpg.connect(database_url)
    try:
        owner: uuid.UUID = await conn.fetchval(
            "INSERT INTO auth.users (id, email) VALUES (gen_random_uuid(), $1) RETURNING id",
            f"bench-{secrets.token_hex(6)}@example.test",
        )
        return await import_quiz(conn, owner, quiz_document(opts))
    finally:
        await conn.close()


async def create_game(url: str, quiz_id: uuid.UUID, players: int) -> dict[str, Any]:
    import httpx

    settings = {"auto_advance": False, "max_players": players, "late_join": False}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post(
            "/games",
            json={
                "quiz_set_id": str(quiz_id),
                "device_id": f"bench-host-{secrets.token_hex(6)}",
                "player_name": "Bench host",
                "game_settings": settings,
            },
        )
    if response.status_code != 201:
        raise RuntimeError(f"POST /games: {response.status_code} {response.text[:300]}")
    game: dict[str, Any] = response.json()
    return game


# ---------------------------------------------------------------- the host


class Host:
    """The game's host over python-socketio: sends the flow commands, watches the phases."""

    def __init__(self, url: str, game: dict[str, Any], *, retry: bool = False) -> None:
        self.url, self.game, self.game_id = url, game, game["id"]
        self.retry = retry  # commands refused UNAVAILABLE (a failover) are sent again
        self.node: int | None = None  # the cluster process holding this socket
        self._client()

    def _client(self) -> None:
        import socketio

        self.sio = socketio.AsyncClient(reconnection=False)
        self.phases: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ended: dict[int, float] = {}  # question index -> receive time (ms)
        self.started: dict[int, tuple[float, int]] = {}  # index -> (receive ms, startsAt)
        self.game_end: dict[str, Any] | None = None
        self.disconnected = False
        self.errors: list[Any] = []
        self.sio.on("game:phase:change", self._phase)
        self.sio.on("game:question:started", self._started)
        self.sio.on("game:end", self._end)
        self.sio.on("game:error", self.errors.append)
        self.sio.on("disconnect", self._gone)
        self._beat: asyncio.Task[None] | None = None

    async def _phase(self, data: dict[str, Any]) -> None:
        if data.get("phase") == "answer_reveal":
            self.ended[data["questionIndex"]] = time.time() * 1000
        await self.phases.put(data)

    async def _started(self, data: dict[str, Any]) -> None:
        if data.get("phase") == "answering":
            self.started[data["question"]["index"]] = (time.time() * 1000, data["startsAt"])

    async def _end(self, data: dict[str, Any]) -> None:
        self.game_end = data

    async def _gone(self, *_: Any) -> None:
        self.disconnected = True

    async def connect(self, avoid_node: int | None = None) -> None:
        """Through nginx (cluster modes): again until the socket is on a process other than
        `avoid_node`, the game's owner (round-robin: a few tries)."""
        from tests.cluster.lb import node_of

        for _ in range(12):
            await self.sio.connect(self.url, transports=["websocket"], wait_timeout=30)
            eio_sid = self.sio.eio.sid or ""
            self.node = node_of(eio_sid) if "." in eio_sid else None
            if avoid_node is None or self.node != avoid_node:
                break
            await self.sio.disconnect()
            self._client()
        registered = asyncio.get_running_loop().create_future()
        self.sio.on("ws:connected", lambda data: registered.done() or registered.set_result(data))
        await self.sio.emit("ws:connect", {"deviceId": f"bench-host-sock-{secrets.token_hex(4)}"})
        await asyncio.wait_for(registered, 30)
        ack = await self.command("game:host:join", hostToken=self.game["host_token"])
        if not ack.get("ok"):
            raise RuntimeError(f"game:host:join refused: {ack}")
        self._beat = asyncio.create_task(self._heartbeat())

    async def _heartbeat(self) -> None:
        """The server drops sockets silent for 60 s; a big lobby takes longer than that."""
        while True:
            await asyncio.sleep(20)
            with contextlib.suppress(Exception):
                await self.sio.emit("ws:heartbeat")

    async def command(self, event: str, **extra: Any) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            ack: dict[str, Any] = await self.sio.call(
                event, {"gameId": self.game_id, **extra}, timeout=60
            )
            if not (self.retry and ack.get("error") == "UNAVAILABLE"):
                return ack
            if time.monotonic() > deadline:
                return ack
            await asyncio.sleep(0.2)

    async def wait_phase(self, phase: str, index: int, within: float) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                change = await self.phases.get()
                if change.get("phase") == phase and change.get("questionIndex") == index:
                    return change
                if self.disconnected:
                    raise RuntimeError("the host socket was disconnected")

    async def close(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.disconnect(), 5)


# ---------------------------------------------------------------- cluster modes


class ClusterTarget:
    """Redis, three `tuiz serve` processes and nginx with deploy/nginx.conf (the runners of
    tests/cluster/lb.py), stopped together."""

    def __init__(self, opts: Options, workdir: Path, database_url: str) -> None:
        from tests.cluster.lb import Cluster
        from tests.cluster.redisproc import RedisProcess

        self.database_url = database_url
        self.stack = contextlib.ExitStack()
        try:
            self.redis = RedisProcess(workdir)
            self.redis.start()
            self.stack.callback(self.redis.stop)
            env = {
                "TUIZ_PIN_LOOKUP_LIMIT_PER_MIN": "0",
                "TUIZ_JOIN_LIMIT_PER_MIN": "0",
                "TUIZ_LOG_LEVEL": "info",
                **dict(item.split("=", 1) for item in opts.tuiz_env),
            }
            self.cluster = Cluster(self.stack, database_url, workdir, self.redis.url, **env)
        except BaseException:
            self.stack.close()
            raise
        self.url = self.cluster.url
        self.workdir = workdir
        self.stop_error: str | None = None

    @property
    def pid(self) -> int:
        return self.cluster.servers[0].process.pid

    @property
    def logs(self) -> list[Path]:
        return [s.log_path for s in self.cluster.servers]

    def pids(self) -> list[int]:
        from bench.socketio_load import tree_pids

        found = [p for s in self.cluster.servers if s.process.poll() is None
                 for p in tree_pids(s.process.pid)]  # fmt: skip
        nginx = self.workdir / "nginx.pid"
        with contextlib.suppress(OSError, ValueError):
            found += tree_pids(int(nginx.read_text().strip()))  # the master and its workers
        if self.redis.process is not None:
            found.append(self.redis.process.pid)
        return found

    async def owner_of(self, game_id: str) -> int | None:
        """The index of the process holding the game's lease."""
        return await self.cluster.owner_index(game_id)

    async def stop(self) -> None:
        """Stop everything; the replay check each process runs when it stops (tests/servers.py)
        is reported, not raised, so a result is never lost to it."""
        try:
            await asyncio.to_thread(self.stack.close)
        except Exception as exc:
            self.stop_error = f"{type(exc).__name__}: {str(exc)[:500]}"


async def kill_owner(
    cluster: ClusterTarget,
    game_id: str,
    procs: list[ClientProc],
    after: float,
    result: dict[str, Any],
) -> None:
    """SIGKILL the game's owner `after` s into the question; time the lease's takeover."""
    await asyncio.sleep(after)
    owner = await cluster.owner_of(game_id)
    if owner is None:
        raise RuntimeError("the game has no owner to kill")
    killed_at = time.time() * 1000
    await asyncio.to_thread(cluster.cluster.servers[owner].kill)
    for proc in procs:
        proc.send({"cmd": "mark-kill", "at": killed_at})
    print(f"   {stamp()}   killed the owner (process n{owner + 1})", flush=True)
    failover: dict[str, Any] = result.setdefault("failover", {})
    failover.update(killed_node=owner + 1, killed_at=killed_at)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now_owner = await cluster.owner_of(game_id)
        if now_owner is not None and now_owner != owner:
            failover["takeover_ms"] = round(time.time() * 1000 - killed_at, 1)
            failover["new_owner_node"] = now_owner + 1
            return
        await asyncio.sleep(0.05)


def failover_summary(reports: list[dict[str, Any]], killed_at: float) -> dict[str, Any]:
    firsts = [r["counters"]["firstAckAfterKill"] for r in reports]
    firsts = [f for f in firsts if f is not None]
    rejoins = [v for r in reports for v in r["counters"]["rejoinLatUs"]]

    def step(name: str) -> dict[str, Any]:
        values = [v for r in reports for v in r["counters"].get(name, [])]
        return {
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
            "max": max(values) if values else None,
        }

    errors: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for r in reports:
        for kind, n in r["counters"].get("rejoinErrors", {}).items():
            errors[kind] = errors.get(kind, 0) + n
        for reason, n in r["counters"].get("disconnectReasons", {}).items():
            reasons[reason] = reasons.get(reason, 0) + n
    return {
        "resume_ms": round(min(firsts) - killed_at, 1) if firsts else None,
        "disconnects": sum(r["counters"]["disconnects"] for r in reports),
        "rejoined": len(rejoins),
        "rejoin_failed": sum(r["counters"]["rejoinFailed"] for r in reports),
        "rejoin_p50_ms": ms(percentile(rejoins, 50)),
        "rejoin_p99_ms": ms(percentile(rejoins, 99)),
        "rejoin_max_ms": ms(max(rejoins)) if rejoins else None,
        "answer_retries": sum(r["counters"]["answerRetries"] for r in reports),
        # the successful attempt of each rejoin, step by step (ms; attempts: count; bytes)
        "rejoin_attempts": step("rejoinAttempts"),
        "rejoin_connect_ms": {k: ms(v) for k, v in step("rejoinConnectUs").items()},
        "rejoin_register_ms": {k: ms(v) for k, v in step("rejoinRegisterUs").items()},
        "rejoin_ack_ms": {k: ms(v) for k, v in step("rejoinAckUs").items()},
        "rejoin_ack_bytes": step("rejoinAckBytes"),
        "rejoin_errors": errors,
        "game_end_received": sum(r["counters"]["gameEnd"] for r in reports),
        "disconnect_reasons": reasons,
    }


# ---------------------------------------------------------------- players


async def start_players(
    opts: Options, players: int, url: str, pin: str, workdir: Path, *, rejoin: bool = False
) -> list[ClientProc]:
    procs_n = min(opts.procs, players)
    counts = [players // procs_n + (1 if i < players % procs_n else 0) for i in range(procs_n)]
    procs: list[ClientProc] = []
    try:
        for index, count in enumerate(counts):
            config = {
                "url": url,
                "pin": pin,
                "count": count,
                "index": index,
                "seed": opts.seed,
                "thinkMs": round(opts.think * 1000),
                "connectConcurrency": opts.connect_concurrency,
                "joinConcurrency": opts.join_concurrency,
                "maxSeconds": int(opts.timeout) + 60,
                "rejoin": rejoin,
            }
            with (workdir / f"players-{index}.log").open("ab") as err:
                process = await asyncio.create_subprocess_exec(
                    "node",
                    str(PLAYERS_JS),
                    json.dumps(config),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=err,
                    limit=256 * 1024 * 1024,  # reports carry every latency
                    start_new_session=True,
                )
            procs.append(ClientProc(f"players-{index}", process))
        for proc in procs:
            await proc.expect("ready", 30)
    except BaseException:
        await asyncio.gather(*(p.stop() for p in procs))
        raise
    return procs


async def counts(procs: list[ClientProc]) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(p.request({"cmd": "count"}, "count", 60) for p in procs)))


async def wait_until(
    procs: list[ClientProc],
    total: Callable[[list[dict[str, Any]]], int],
    expected: int,
    within: float,
    stall: float = 10,
) -> tuple[int, float]:
    """Poll the players until total(counts) reaches `expected` or stops growing for `stall`
    seconds -> (total, monotonic time it last grew)."""
    deadline = time.monotonic() + within
    last, changed = -1, time.monotonic()
    while True:
        value = total(await counts(procs))
        now = time.monotonic()
        if value != last:
            last, changed = value, now
        if value >= expected or now - changed > stall or now > deadline:
            return value, changed
        await asyncio.sleep(0.2)


def spans(replies: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sum(r["ok"] for r in replies)
    firsts = [r["first"] for r in replies if r["first"] is not None]
    lasts = [r["last"] for r in replies if r["last"] is not None]
    latencies = [v for r in replies for v in r["latencies"]]
    seconds = (max(lasts) - min(firsts)) / 1000 if firsts and lasts else None
    return {
        "ok": ok,
        "failed": sum(r["failed"] for r in replies),
        "seconds": round(seconds, 2) if seconds else None,
        "per_second": round(ok / seconds, 1) if seconds else None,
        "latency_p50_ms": ms(percentile(latencies, 50)),
        "latency_p99_ms": ms(percentile(latencies, 99)),
    }


# ---------------------------------------------------------------- profile


async def profile_server(pid: int, seconds: float, workdir: Path) -> dict[str, Any]:
    """py-spy on the server for `seconds`: top frames by own samples and by inclusive samples."""
    spy = py_spy()
    if spy is None:
        return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
    raw = workdir / "profile.txt"
    process = await asyncio.create_subprocess_exec(
        spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "100",
        "--nonblocking",
        "--format",
        "raw",
        "-o",
        str(raw),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), seconds + 60)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if not raw.exists():
        return {"error": err.decode(errors="replace")[-500:]}
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    shared = RESULTS / f"profile-{datetime.now():%Y-%m-%dT%H%M%S}.txt"
    return {
        "samples": total,
        "raw": str(raw),
        "saved_as": str(shared),
        "own_top": [[f, round(100 * n / max(total, 1), 1)] for f, n in own.most_common(25)],
        "inclusive_top": [
            [f, round(100 * n / max(total, 1), 1)] for f, n in inclusive.most_common(40)
        ],
    }


def start_profile(
    opts: Options, phase: str, server: Server | ClusterTarget, workdir: Path
) -> asyncio.Task[dict[str, Any]] | None:
    if opts.profile != phase:
        return None
    return asyncio.create_task(profile_server(server.pid, opts.profile_seconds, workdir))


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


def log_tails(workdir: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:])
        for p in sorted(workdir.glob("*.log"))
    )


def keep_profile(profile: Any) -> None:
    """Copy the raw py-spy stacks next to the results (the temp dir goes away)."""
    if isinstance(profile, dict) and Path(profile.get("raw", "")).exists():
        shutil.copy(profile["raw"], profile["saved_as"])


def _short(frame: str) -> str:
    """'fn (/long/path/site-packages/pkg/mod.py:12)' -> 'fn (pkg/mod.py)'."""
    match = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame
    name, path = match.groups()
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


# ---------------------------------------------------------------- one game


async def verify(
    database_url: str, url: str, game_id: str, acked: list[list[str]], told: dict[str, Any]
) -> dict[str, Any]:
    """Acked answers against the database; final scores against the leaderboard."""
    import asyncpg
    import httpx

    gid = uuid.UUID(game_id)
    acked_ids = {answer_id for _player, answer_id in acked}
    conn = await asyncpg.connect(database_url)
    try:
        logged = await conn.fetch(
            "SELECT player_id::text AS player_id, payload->>'answer_id' AS answer_id"
            " FROM public.game_events WHERE game_id = $1 AND event_type = 'game:answer:accepted'",
            gid,
        )
        logged_ids = [r["answer_id"] for r in logged]
        # The projection (scores, answer_report) is written shortly after the game's last
        # event: wait for it to hold every logged answer, up to 20 s.
        deadline = time.monotonic() + 20
        while True:
            rows = await conn.fetch(
                "SELECT player_id::text AS player_id, score, answer_report"
                " FROM public.game_player_data WHERE game_id = $1",
                gid,
            )
            reported: dict[str, str] = {}
            for row in rows:
                report = row["answer_report"]
                report = json.loads(report) if isinstance(report, str) else (report or {})
                for entry in report.values():
                    reported[entry["answer_id"]] = row["player_id"]
            if len(reported) >= len(set(logged_ids)) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        status = await conn.fetchval("SELECT status::text FROM public.games WHERE id = $1", gid)
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.get(
            f"/games/{game_id}/leaderboard", params={"limit": LEADERBOARD_LIMIT}
        )
        board = response.json().get("leaderboard", []) if response.status_code == 200 else []
    db_scores = {r["player_id"]: r["score"] for r in rows}
    board_scores = {r["player_id"]: r["score"] for r in board}
    # Over LEADERBOARD_LIMIT players the board holds the top rows only: compare those.
    compared = board_scores.keys() | (db_scores.keys() if len(db_scores) <= len(board) else set())
    mismatched = sorted(p for p in compared if board_scores.get(p) != db_scores.get(p))
    told_mismatch = sorted(p for p, s in told.items() if s is not None and db_scores.get(p) != s)
    lost = sorted(acked_ids - set(logged_ids))
    return {
        "game_status": status,
        "answers_in_log": len(logged_ids),
        "answers_in_log_distinct": len(set(logged_ids)),
        "answers_in_report": len(reported),
        "lost": len(lost),
        "lost_examples": lost[:10],
        "missing_from_report": len(acked_ids - reported.keys()),
        "in_db_not_acked": len(set(logged_ids) - acked_ids),
        "players_in_db": len(db_scores),
        "leaderboard_rows": len(board_scores),
        "score_mismatches_db_vs_leaderboard": len(mismatched),
        "score_mismatch_examples": mismatched[:5],
        "score_mismatches_db_vs_told": len(told_mismatch),
    }


def server_errors(log: Path) -> list[str]:
    """Error-level lines of the server's JSON log (first 10)."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if '"level": "error"' in line or '"level":"error"' in line or "Traceback" in line:
                found.append(line[:400])
    return found[:10]


async def play(
    opts: Options,
    players: int,
    server: Server | ClusterTarget,
    database_url: str,
    quizzes: dict[str, uuid.UUID],
    pg_pids: Callable[[], list[int]],
    workdir: Path,
    result: dict[str, Any],
) -> None:
    """One game of `players` players; fills `result` as phases complete."""
    t = opts.phase_timeout

    def phase(name: str) -> None:
        result["phase"] = name
        print(f"   {stamp()} {name}", flush=True)

    url = server.url if isinstance(server, ClusterTarget) else f"http://127.0.0.1:{server.port}"
    cluster = server if isinstance(server, ClusterTarget) else None
    kill = result.get("mode") == "cluster-kill"
    if database_url not in quizzes:  # after the first server start: it applies the migrations
        quizzes[database_url] = await import_bench_quiz(database_url, opts)
    game = await create_game(url, quizzes[database_url], players)
    result.update(game_id=game["id"], pin=game["game_code"], server_pid=server.pid)
    owner = await cluster.owner_of(game["id"]) if cluster is not None else None
    host = Host(url, game, retry=kill)
    procs: list[ClientProc] = []
    try:
        await host.connect(avoid_node=owner)
        if cluster is not None:
            result["owner_node"] = owner + 1 if owner is not None else None
            result["host_node"] = host.node + 1 if host.node is not None else None
        procs = await start_players(opts, players, url, game["game_code"], workdir, rejoin=kill)
        me = os.getpid()
        groups: dict[str, Callable[[], list[int]]] = {
            "server": server.pids,
            "clients": lambda: [p.pid for p in procs],
            "orchestrator": lambda: [me],
        }
        if pg_pids():
            groups["postgres"] = pg_pids

        phase("connect")
        usage = Usage(groups)
        replies = await asyncio.gather(
            *(p.request({"cmd": "connect"}, "connected", t) for p in procs)
        )
        result["connect"] = {**spans(list(replies)), **usage.percent()}

        phase("join + game:player-joined fan-out")
        usage = Usage(groups)
        began = time.monotonic()
        join_wall = time.time() * 1000
        profiling = start_profile(opts, "join", server, workdir)
        replies = await asyncio.gather(*(p.request({"cmd": "join"}, "joined", t) for p in procs))
        join = spans(list(replies))
        joined = join["ok"]
        join["errors"] = {}
        for reply in replies:
            for code, n in reply["counters"]["joinErrors"].items():
                join["errors"][code] = join["errors"].get(code, 0) + n
        expected = joined * (joined - 1) // 2
        delivered, grew = await wait_until(
            procs, lambda c: sum(x["playerJoined"] for x in c), expected, t
        )
        join.update(
            fanout_expected=expected,
            fanout_delivered=delivered,
            with_fanout_seconds=round(grew - began, 2),
            **usage.percent(),
        )
        result["join"] = join
        if opts.gc_probe:
            join["server_gc"] = gc_pauses(workdir, join_wall, time.time() * 1000)
        if profiling is not None:
            result["profile"] = {"phase": "join", **await profiling}
        if joined == 0:
            raise RuntimeError(f"no player could join: {join['errors']}")
        await asyncio.sleep(2)  # let the lobby go quiet

        phase(f"game: {opts.questions} questions")
        usage = Usage(groups)
        game_began = time.monotonic()
        game_wall = time.time() * 1000
        host_acks: list[float] = []
        profiling = start_profile(opts, "game", server, workdir)
        killing: asyncio.Task[None] | None = None
        for index in range(opts.questions):
            sent = time.monotonic()
            # Each step names the one it advances from, so the host's retry after an owner's
            # death (and the server's own) cannot advance twice (docs/game-protocol.md).
            if index == 0:
                ack = await host.command("game:flow:start", **{"from": {"phase": "waiting"}})
            else:
                seen = {"phase": "leaderboard", "questionIndex": index - 1}
                ack = await host.command("game:flow:next", **{"from": seen})
            host_acks.append((time.monotonic() - sent) * 1000)
            if not ack.get("ok"):
                raise RuntimeError(f"question {index + 1}: host command refused: {ack}")
            kill_now = index == min(opts.kill_question, opts.questions - 1)
            if kill and cluster is not None and kill_now:
                killing = asyncio.create_task(
                    kill_owner(cluster, game["id"], procs, opts.think / 2, result)
                )
                result.setdefault("failover", {})["question"] = index
            await host.wait_phase("answer_reveal", index, opts.answering_time + t)
            if killing is not None:
                await killing
            print(f"   {stamp()}   question {index + 1} closed", flush=True)
            await asyncio.sleep(opts.pause)  # the reveal screen
            revealed = {"phase": "answer_reveal", "questionIndex": index}
            ack = await host.command("game:flow:next", **{"from": revealed})  # -> leaderboard,
            # or the podium at the end
            if not ack.get("ok"):
                raise RuntimeError(f"after question {index + 1}: next refused: {ack}")
            if index + 1 < opts.questions:
                await asyncio.sleep(opts.pause)  # the leaderboard screen
        sent_total = sum(x["sent"] for x in await counts(procs))
        await wait_until(procs, lambda c: sum(x["done"] for x in c), sent_total, t)
        await wait_until(procs, lambda c: sum(x["gameEnd"] for x in c), joined, 30, stall=5)
        result["game_seconds"] = round(time.monotonic() - game_began, 2)
        result["game_cpu"] = usage.percent()
        if opts.gc_probe:
            result["game_server_gc"] = gc_pauses(workdir, game_wall, time.time() * 1000)
        result["host_command_ack_p50_ms"] = round(percentile(host_acks, 50) or 0, 1)
        result["host_command_ack_max_ms"] = round(max(host_acks), 1)
        if profiling is not None:
            result["profile"] = {"phase": "game", **await profiling}

        phase("report + database checks")
        reports = list(
            await asyncio.gather(*(p.request({"cmd": "report"}, "report", 120) for p in procs))
        )
        result.update(summarize(reports, joined, opts.questions))
        acked = [a for r in reports for q in r["questions"] for a in q["acked"]]
        told = {pid: score for r in reports for pid, score in r["scores"]}
        checks = await verify(database_url, url, game["id"], acked, told)
        result["checks"] = checks
        result["answers"]["in_db"] = checks["answers_in_log"]
        result["answers"]["lost"] = checks["lost"]
        result["host_errors"] = [str(e)[:200] for e in host.errors[:5]]
        result["game_end_received_by_host"] = host.game_end is not None
        result["players_counters"] = [
            {k: r["counters"][k] for k in ("disconnects", "gameErrors", "gameEnd", "connectFailed")}
            for r in reports
        ]
        result["players_clock_offset_ms"] = [round(r["clockOffsetMs"], 3) for r in reports]
        if kill:
            result["failover"].update(failover_summary(reports, result["failover"]["killed_at"]))
        result["phase"] = "done"
    finally:
        await host.close()
        await asyncio.gather(*(p.stop() for p in procs))


def summarize(reports: list[dict[str, Any]], joined: int, questions: int) -> dict[str, Any]:
    per_question = []
    every_recv: list[float] = []
    every_ack: list[float] = []
    sent = ok = failed = 0
    errors: dict[str, int] = {}
    for index in range(questions):
        rows = [q for r in reports for q in r["questions"] if q["index"] == index]
        received = sum(q["received"] for q in rows)
        via_rejoin = sum(q.get("viaRejoin", 0) for q in rows)
        recv = [v for q in rows for v in q["recvLatUs"]]
        acks = [v for q in rows for v in q["ackLatUs"]]
        every_recv += recv
        every_ack += acks
        q_sent = sum(q["sent"] for q in rows)
        q_ok = sum(q["ok"] for q in rows)
        q_failed = sum(q["failed"] for q in rows)
        sent, ok, failed = sent + q_sent, ok + q_ok, failed + q_failed
        for q in rows:
            for code, n in q["errors"].items():
                errors[code] = errors.get(code, 0) + n
        per_question.append(
            {
                "index": index,
                "received": received,
                "last_player_ms": ms(max(recv)) if recv else None,
                # a rejoin's snapshot showing the question open counts: its start was sent
                # while the player's socket was away (cluster-kill)
                "complete": received + via_rejoin == joined,
                "via_rejoin": via_rejoin,
                "first_player_ms": ms(min(recv)) if recv else None,
                "delivery_p50_ms": ms(percentile(recv, 50)),
                "sent": q_sent,
                "acked": q_ok,
                "failed": q_failed,
                "ack_p50_ms": ms(percentile(acks, 50)),
                "ack_p99_ms": ms(percentile(acks, 99)),
                "ack_max_ms": ms(max(acks)) if acks else None,
            }
        )
    # A question some player never got has no last-player figure: the target is missed.
    incomplete = sum(1 for q in per_question if not q["complete"])
    last = [q["last_player_ms"] for q in per_question if q["last_player_ms"] is not None]
    return {
        "questions": per_question,
        "broadcast": {
            "last_player_p50_ms": None if incomplete else percentile(last, 50),
            "last_player_p99_ms": None if incomplete else percentile(last, 99),
            "last_player_max_ms": max(last) if last else None,
            "incomplete_questions": incomplete,
            "delivery_p50_ms": ms(percentile(every_recv, 50)),
            "delivery_p99_ms": ms(percentile(every_recv, 99)),
            "missing_deliveries": joined * questions - len(every_recv),
        },
        "ack": {
            "p50_ms": ms(percentile(every_ack, 50)),
            "p99_ms": ms(percentile(every_ack, 99)),
            "max_ms": ms(max(every_ack)) if every_ack else None,
        },
        "answers": {"sent": sent, "acked": ok, "failed": failed, "errors": errors},
    }


def meets(result: dict[str, Any]) -> bool:
    try:
        return bool(
            result.get("phase") == "done"
            and result["ack"]["p99_ms"] <= TARGET_ACK_P99_MS
            and result["broadcast"]["last_player_p99_ms"] <= TARGET_BROADCAST_P99_MS
            and result["answers"]["lost"] == 0
            and result["answers"]["failed"] == 0
            and result["join"]["ok"] == result["players"]
            and result["broadcast"]["missing_deliveries"] == 0
        )
    except (KeyError, TypeError):
        return False


async def run_size(
    opts: Options,
    players: int,
    database_url: str,
    quizzes: dict[str, uuid.UUID],
    pg_dir: Path | None,
    workdir: Path,
    mode: str = "single",
) -> dict[str, Any]:
    result: dict[str, Any] = {"players": players, "procs": min(opts.procs, players), "mode": mode}
    started = time.monotonic()
    server: Server | ClusterTarget | None = None
    try:
        result["code"] = code_version()  # what this server process loaded
        if mode == "single":
            server = await start_tuiz(opts, workdir, database_url)
        else:
            server = await asyncio.to_thread(ClusterTarget, opts, workdir, database_url)
        await play(
            opts,
            players,
            server,
            database_url,
            quizzes,
            lambda: postgres_pids(pg_dir),
            workdir,
            result,
        )
    except Exception as exc:  # one size failing still reports the others
        logs = log_tails(workdir)
        where = result.get("phase", "start")
        result["error"] = f"{type(exc).__name__} in {where}: {exc}\n{logs}"
        print(f"   failed in {where}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server_logs = server.logs if isinstance(server, ClusterTarget) else [server.log]
            result["server_errors"] = [e for p in server_logs for e in server_errors(p)][:10]
            await server.stop()
            if isinstance(server, ClusterTarget) and server.stop_error:
                result["stop_error"] = server.stop_error
    result["meets_targets"] = meets(result)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


async def amain(opts: Options) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tuiz-game-bench-") as tmp:
        async with database(opts, Path(tmp)) as (database_url, pg_dir):
            quizzes: dict[str, uuid.UUID] = {}
            for players, mode in [(p, m) for p in opts.sizes for m in opts.modes]:
                workdir = Path(tmp) / f"game-{players}-{mode}"
                workdir.mkdir()
                print(
                    f"== {players} players in {min(opts.procs, players)} processes, {mode}",
                    flush=True,
                )
                result = await run_size(opts, players, database_url, quizzes, pg_dir, workdir, mode)
                result["database"] = "given" if opts.database_url else "embedded"
                keep_profile(result.get("profile"))
                results.append(result)
                brief = {k: v for k, v in result.items() if k not in ("questions", "profile")}
                print(json.dumps(brief, indent=1, default=str)[:3000], flush=True)
    return results


# ---------------------------------------------------------------- report


def fmt(value: Any, width: int, digits: int = 1) -> str:
    if isinstance(value, bool) or value is None:
        return f"{'-' if value is None else str(value):>{width}}"
    if isinstance(value, float):
        return f"{value:>{width},.{digits}f}"
    if isinstance(value, int):
        return f"{value:>{width},}"
    return f"{value!s:>{width}}"


def code_version() -> dict[str, Any]:
    """The commit, and the server files changed from it in the working tree (what was run)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_src": git("status", "--porcelain", "--", "src", "supabase").splitlines(),
    }


def table(results: list[dict[str, Any]]) -> str:
    columns = [
        ("mode", 13),
        ("players", 8),
        ("joined", 7),
        ("join s", 7),
        ("ack p50", 8),
        ("ack p99", 8),
        ("bcast p99", 10),
        ("sent", 7),
        ("acked", 7),
        ("in DB", 7),
        ("lost", 5),
        ("srv CPU%", 9),
        ("pg CPU%", 8),
        ("cli CPU%", 9),
        ("targets", 8),
    ]
    header = "".join(f"{name:>{w}}" for name, w in columns)
    lines = [header, "-" * len(header)]
    for r in results:
        answers = r.get("answers", {})
        cpu = r.get("game_cpu", {})
        cells = [
            r.get("mode", "single"),
            r["players"],
            r.get("join", {}).get("ok"),
            r.get("join", {}).get("with_fanout_seconds"),
            r.get("ack", {}).get("p50_ms"),
            r.get("ack", {}).get("p99_ms"),
            r.get("broadcast", {}).get("last_player_p99_ms"),
            answers.get("sent"),
            answers.get("acked"),
            answers.get("in_db"),
            answers.get("lost"),
            cpu.get("server_cpu_pct"),
            cpu.get("postgres_cpu_pct"),
            cpu.get("clients_cpu_pct"),
            "meets" if r.get("meets_targets") else "MISSES",
        ]
        lines.append("".join(fmt(v, w) for v, (_, w) in zip(cells, columns, strict=True)))
    for r in results:
        if "error" in r:
            lines.append(f"{r['players']}: FAILED: {r['error'].splitlines()[0]}")
        if "failover" in r:
            f = r["failover"]
            lines.append(
                f"{r['players']} {r.get('mode')}: owner killed at question "
                f"{f.get('question', 0) + 1}; lease taken over after {f.get('takeover_ms')} ms, "
                f"first answer acked after the kill {f.get('resume_ms')} ms, "
                f"{f.get('rejoined')} rejoined (p50 {f.get('rejoin_p50_ms')} ms, "
                f"max {f.get('rejoin_max_ms')} ms, {f.get('rejoin_failed')} failed), "
                f"{f.get('answer_retries')} answers re-sent, "
                f"lost {r.get('answers', {}).get('lost')}"
            )
    best = largest_meeting(results)
    steady = largest_steady(results)
    lines.append(
        f"targets: ack p99 <= {TARGET_ACK_P99_MS:.0f} ms, question-start to the last player "
        f"p99 <= {TARGET_BROADCAST_P99_MS:.0f} ms, 0 answers lost (ms; join s: joins + "
        "lobby fan-out; CPU % of one core over the game)"
    )
    lines.append(
        f"largest game meeting the targets: {best} players"
        if best
        else "largest game meeting the targets: none of the sizes run"
    )
    if len(results) > 1 and steady != best:
        lines.append(
            f"largest with every smaller size also meeting them: {steady or 'none'} "
            "(a single run per size on a shared machine: rerun the sizes around it)"
        )
    return "\n".join(lines)


def largest_meeting(results: list[dict[str, Any]]) -> int | None:
    sizes = [r["players"] for r in results if r.get("meets_targets")]
    return max(sizes) if sizes else None


def largest_steady(results: list[dict[str, Any]]) -> int | None:
    """The largest size such that it and every smaller size run met the targets."""
    best = None
    for r in sorted(results, key=lambda r: r["players"]):
        if not r.get("meets_targets"):
            break
        best = r["players"]
    return best


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench.game_load", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--players", type=int, default=1000, help=f"players in the game (max {MAX_PLAYERS})"
    )
    p.add_argument("--sweep", help="comma-separated game sizes, run in order (replaces --players)")
    p.add_argument("--procs", type=int, default=4, help="Node player processes (max 32)")
    p.add_argument("--questions", type=int, default=5, help="questions in the quiz (max 50)")
    p.add_argument("--choices", type=int, default=4, help="choices per question")
    p.add_argument("--answering-time", type=int, default=15, help="seconds to answer")
    p.add_argument("--think", type=float, default=3.0, help="players answer after 0..THINK s")
    p.add_argument("--pause", type=float, default=1.0, help="s on the reveal and leaderboard")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--connect-concurrency", type=int, default=32, help="in flight per process")
    p.add_argument("--join-concurrency", type=int, default=4, help="in flight per process")
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    p.add_argument(
        "--tuiz-env", action="append", default=[], metavar="KEY=VALUE", help="env for tuiz serve"
    )
    p.add_argument(
        "--profile", choices=["game", "join"], help="py-spy the server during that phase"
    )
    p.add_argument("--profile-seconds", type=float, default=20)
    p.add_argument(
        "--gc-probe", action="store_true", help="time the server's GC pauses (sitecustomize)"
    )
    p.add_argument("--timeout", type=float, default=1800, help="global limit, seconds")
    p.add_argument("--phase-timeout", type=float, default=300, help="limit per phase, seconds")
    p.add_argument("--output", type=Path, help="result file (default bench/results/game-...)")
    p.add_argument(
        "--modes",
        default="single",
        help="comma-separated: single, cluster (3 processes behind nginx), cluster-kill",
    )
    p.add_argument(
        "--kill-question", type=int, default=1, help="cluster-kill: the question (from 0)"
    )
    a = p.parse_args(argv)
    modes = tuple(m.strip() for m in a.modes.split(",") if m.strip())
    if not modes or not set(modes) <= {"single", "cluster", "cluster-kill"}:
        p.error("--modes: single, cluster, cluster-kill")
    try:
        sizes = tuple(int(s) for s in a.sweep.split(",") if s.strip()) if a.sweep else (a.players,)
    except ValueError:
        p.error("--sweep takes comma-separated integers")
    if not sizes or len(sizes) > 10 or not all(1 <= s <= MAX_PLAYERS for s in sizes):
        p.error(f"1..10 sizes, each 1..{MAX_PLAYERS} players")
    if not (1 <= a.procs <= 32 and 1 <= a.questions <= 50 and 2 <= a.choices <= 6):
        p.error("--procs 1..32, --questions 1..50, --choices 2..6")
    if not (
        5 <= a.answering_time <= 300 and 0 <= a.think < a.answering_time and 0 <= a.pause <= 60
    ):
        p.error("--answering-time 5..300, --think 0..answering-time, --pause 0..60")
    if any("=" not in item for item in a.tuiz_env):
        p.error("--tuiz-env takes KEY=VALUE")
    return Options(
        sizes=sizes,
        procs=a.procs,
        questions=a.questions,
        choices=a.choices,
        answering_time=a.answering_time,
        think=a.think,
        pause=a.pause,
        seed=a.seed,
        connect_concurrency=max(1, a.connect_concurrency),
        join_concurrency=max(1, a.join_concurrency),
        database_url=a.database_url,
        tuiz_env=tuple(a.tuiz_env),
        profile=a.profile,
        profile_seconds=max(1.0, min(a.profile_seconds, 600)),
        gc_probe=a.gc_probe,
        timeout=max(60.0, a.timeout),
        phase_timeout=max(10.0, a.phase_timeout),
        output=a.output,
        modes=modes,
        kill_question=max(0, a.kill_question),
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    fd_limit = raise_fd_limit()
    if fd_limit < max(opts.sizes) * 2 + 1000:
        print(f"open-files limit {fd_limit} is low for {max(opts.sizes)} players", file=sys.stderr)
    load_before = os.getloadavg()

    results, code = run_bounded(lambda: amain(opts), opts.timeout)
    if results is None:
        return code
    print()
    print(table(results))
    now = datetime.now().astimezone()
    path = opts.output or RESULTS / f"game-{now:%Y-%m-%dT%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "game_load",
        "date": now.isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.game_load", *(argv or sys.argv[1:])]),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "targets": {
            "ack_p99_ms": TARGET_ACK_P99_MS,
            "broadcast_last_player_p99_ms": TARGET_BROADCAST_P99_MS,
            "lost": 0,
        },
        "largest_meeting_targets": largest_meeting(results),
        "largest_meeting_targets_with_all_smaller": largest_steady(results),
        "code_at_end": code_version(),  # each result's "code" is the tree its server started on
        "machine": {
            **machine(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "orchestrator_cpu_s": round(cpu_seconds([os.getpid()]), 1),
        },
        "results": results,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
