"""Where tuiz's memory per idle Socket.IO connection goes: tracemalloc snapshots by phase.

    .venv/bin/python -m bench.sio_memory --clients 1000 [--procs 2] [--frames 12]
        [--tuiz-ws websockets-sansio|websockets|wsproto] [--deflate on|off] [--no-trace]
        [--output FILE]

It starts `tuiz serve` (through this module, which turns tracemalloc on and takes a snapshot
on SIGUSR1) against a private embedded PostgreSQL with a seated game, as
bench/socketio_load.py does, and the same Node load clients, then reads the server in four
states, each after a few seconds of quiet:

1. base: only the host socket, connected, registered and in the room;
2. engine: N more Socket.IO connections, NOT registered (no `ws:connect`): the cost of
   uvicorn + the websocket implementation + python-engineio + python-socketio + tuiz's
   `Client` object made on `connect`;
3. registered: the N sockets did `ws:connect` (connection row written, device id kept,
   heartbeats started);
4. joined: the N sockets joined the game's room as players.

For each step it reports RSS per connection (VmRSS delta / N), Python heap per connection
(tracemalloc traced-bytes delta / N: what Python allocated; the rest of RSS is native memory
in uvloop/libuv, C extensions and malloc overhead), asyncio tasks and the GC-tracked objects
added per connection by type, and the top allocation sites (innermost frame, and the
innermost frame in a package other than the standard library) of the delta. `--no-trace`
runs without tracemalloc (its bookkeeping inflates RSS) to read RSS alone.

Loopback only, bounded (`--timeout`); every process started is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import itertools
import json
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

SNAP_DIR_ENV = "TUIZ_BENCH_SNAPSHOT_DIR"
FRAMES_ENV = "TUIZ_BENCH_TRACE_FRAMES"
DEFLATE_ENV = "TUIZ_BENCH_WS_DEFLATE"

# ---------------------------------------------------------------- inside the server process


def _snapshot(signum: int, frame: Any) -> None:
    """SIGUSR1: write snapshot-<n>.pickle (when tracing) and snapshot-<n>.json, then done-<n>."""
    directory = Path(os.environ[SNAP_DIR_ENV])
    n = len(list(directory.glob("done-*")))
    gc.collect()
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    try:
        running = asyncio.all_tasks(asyncio.get_running_loop())
    except RuntimeError:
        running = set()
    coros = collections.Counter(
        getattr(t.get_coro(), "__qualname__", type(t.get_coro()).__name__) for t in running
    )
    info: dict[str, Any] = {
        "tasks": len(running),
        "task_coroutines": dict(coros.most_common(20)),
        "types": dict(counts.most_common(80)),
    }
    if tracemalloc.is_tracing():
        info["traced_bytes"] = tracemalloc.get_traced_memory()[0]
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        snap.dump(str(directory / f"snapshot-{n}.pickle"))
    (directory / f"snapshot-{n}.json").write_text(json.dumps(info))
    (directory / f"done-{n}").touch()


def serve(argv: list[str]) -> None:
    """`tuiz serve` with tracemalloc (FRAMES_ENV > 0), SIGUSR1 snapshots, and, for experiments
    only, websocket permessage-deflate forced (DEFLATE_ENV=0 or 1: uvicorn's
    `ws_per_message_deflate`, which `tuiz serve` sets and does not expose)."""
    frames = int(os.environ.get(FRAMES_ENV, "0"))
    if frames > 0:
        tracemalloc.start(frames)
    if SNAP_DIR_ENV in os.environ:
        signal.signal(signal.SIGUSR1, _snapshot)
    if os.environ.get(DEFLATE_ENV) in ("0", "1"):
        import uvicorn

        original = uvicorn.Config.__init__
        deflate = os.environ[DEFLATE_ENV] == "1"

        def forced(self: Any, *args: Any, **kwargs: Any) -> None:
            kwargs["ws_per_message_deflate"] = deflate
            original(self, *args, **kwargs)

        uvicorn.Config.__init__ = forced  # type: ignore[method-assign]
    from tuiz.cli import app

    app(["serve", *argv], prog_name="tuiz")


# ---------------------------------------------------------------- the orchestrator

STDLIB = (os.path.dirname(os.__file__),)


def owner(frames: list[tracemalloc.Frame]) -> str:
    """The innermost frame outside the standard library (frames: oldest first)."""
    for f in reversed(frames):
        if not f.filename.startswith(STDLIB) or "site-packages" in f.filename:
            return short(f)
    return short(frames[-1])


def short(f: tracemalloc.Frame) -> str:
    name = f.filename
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in name:
            name = name.split(marker, 1)[1]
            break
    return f"{name}:{f.lineno}"


def package(site: str) -> str:
    head = site.split("/", 1)[0].split(":")[0]
    return head.removesuffix(".py")


def diff(old: tracemalloc.Snapshot, new: tracemalloc.Snapshot, n: int, top: int) -> dict[str, Any]:
    stats = new.compare_to(old, "traceback")
    by_line: collections.Counter[str] = collections.Counter()
    by_owner: collections.Counter[str] = collections.Counter()
    by_package: collections.Counter[str] = collections.Counter()
    blocks: collections.Counter[str] = collections.Counter()
    for st in stats:
        if st.size_diff == 0:
            continue
        frames = list(st.traceback)
        by_line[short(frames[-1])] += st.size_diff
        site = owner(frames)
        by_owner[site] += st.size_diff
        by_package[package(site)] += st.size_diff
        blocks[site] += st.count_diff

    def per_conn(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(v / n / 1024, 2)) for k, v in counter.most_common(top)]

    return {
        "kb_per_conn_by_package": per_conn(by_package),
        "kb_per_conn_by_owner_site": per_conn(by_owner),
        "kb_per_conn_by_innermost_line": per_conn(by_line),
        "blocks_per_conn_by_owner_site": [
            (k, round(blocks[k] / n, 2)) for k, _ in by_owner.most_common(top)
        ],
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from bench import socketio_load as sl

    opts = sl.parse(
        [
            "--clients",
            str(args.clients),
            "--procs",
            str(args.procs),
            "--burst-senders",
            "1",
            "--targets",
            "tuiz",
            "--heartbeat-ms",
            "25000",
            *(["--tuiz-ws", args.tuiz_ws] if args.tuiz_ws else []),
            "--tuiz-ws-deflate",
            args.deflate,
        ]
    )
    snaps = workdir / "snaps"
    snaps.mkdir()
    env = {
        SNAP_DIR_ENV: str(snaps),
        FRAMES_ENV: "0" if args.no_trace else str(args.frames),
        "PYTHONPATH": str(sl.ROOT),
    }
    if args.deflate != "default":
        env[DEFLATE_ENV] = "1" if args.deflate == "on" else "0"
    result: dict[str, Any] = {"clients": args.clients, "tracing": not args.no_trace}
    async with sl.tuiz_database(opts, workdir) as (database_url, _):
        server = await sl.start_tuiz(
            opts, workdir, database_url, module="bench.sio_memory", env_extra=env
        )
        everyone: list[sl.ClientProc] = []
        try:
            room_id = await sl.create_game(database_url, opts)
            receivers, sender = await sl.start_clients(
                opts, f"http://127.0.0.1:{server.port}", room_id, workdir
            )
            everyone = [*receivers, sender]
            t = opts.phase_timeout
            states: list[dict[str, Any]] = []

            async def read(name: str) -> None:
                await asyncio.sleep(args.settle)
                n = len(states)
                os.kill(server.pid, signal.SIGUSR1)
                for _ in range(1500):  # the server writes done-<n> when the snapshot is out
                    if (snaps / f"done-{n}").exists():
                        break
                    await asyncio.sleep(0.2)
                else:
                    raise TimeoutError(f"no snapshot {n} from the server")
                info = json.loads((snaps / f"snapshot-{n}.json").read_text())
                states.append({"state": name, "rss_kb": sl.rss_kb(server.pids()), **info})
                print(f"   {time.strftime('%H:%M:%S')} {name}: rss {states[-1]['rss_kb']} KB")

            await sender.request({"cmd": "connect"}, "connected", t)
            await sender.request({"cmd": "join"}, "joined", t)
            await read("base")
            replies = await asyncio.gather(
                *(
                    r.request({"cmd": "connect", "register": False}, "connected", t)
                    for r in receivers
                )
            )
            n = sum(r["ok"] for r in replies)
            await read("engine")
            await asyncio.gather(
                *(r.request({"cmd": "register"}, "registered", t) for r in receivers)
            )
            await read("registered")
            await asyncio.gather(*(r.request({"cmd": "join"}, "joined", t) for r in receivers))
            await read("joined")
        finally:
            await server.stop()
            await asyncio.gather(*(p.stop() for p in everyone))

    result["connected"] = n
    steps = []
    for before, after in itertools.pairwise(states):
        types = collections.Counter(after["types"])
        types.subtract(before["types"])
        step: dict[str, Any] = {
            "step": f"{before['state']} -> {after['state']}",
            "rss_kb_per_conn": round((after["rss_kb"] - before["rss_kb"]) / n, 2),
            "tasks_per_conn": round((after["tasks"] - before["tasks"]) / n, 2),
            "objects_per_conn": [
                (k, round(v / n, 2)) for k, v in types.most_common(25) if v / n >= 0.5
            ],
        }
        if "traced_bytes" in after:
            step["python_heap_kb_per_conn"] = round(
                (after["traced_bytes"] - before["traced_bytes"]) / n / 1024, 2
            )
            i = states.index(before)
            old = tracemalloc.Snapshot.load(str(snaps / f"snapshot-{i}.pickle"))
            new = tracemalloc.Snapshot.load(str(snaps / f"snapshot-{i + 1}.pickle"))
            step.update(diff(old, new, n, args.top))
        steps.append(step)
    result["states"] = [{k: v for k, v in s.items() if k != "types"} for s in states]
    result["steps"] = steps
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        serve(argv[1:])
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.sio_memory", description=__doc__)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--frames", type=int, default=12, help="tracemalloc frames per allocation")
    p.add_argument("--top", type=int, default=25, help="allocation sites listed per step")
    p.add_argument("--settle", type=float, default=3, help="quiet seconds before each read")
    p.add_argument("--tuiz-ws", choices=["websockets-sansio", "websockets", "wsproto"])
    p.add_argument("--no-trace", action="store_true", help="RSS only, tracemalloc off")
    p.add_argument(
        "--deflate",
        choices=["default", "on", "off"],
        default="default",
        help="force uvicorn's ws_per_message_deflate (default: as tuiz serve sets it)",
    )
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--output", type=Path)
    args = p.parse_args(argv)
    if not 1 <= args.clients <= 5000 or not 1 <= args.procs <= 8:
        p.error("--clients 1..5000, --procs 1..8")
    from bench import socketio_load as sl

    sl.raise_fd_limit()

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(args.timeout):
            with tempfile.TemporaryDirectory(prefix="tuiz-sio-mem-") as tmp:
                return await run(args, Path(tmp))

    result = asyncio.run(bounded())
    result["tuiz_ws"] = args.tuiz_ws or "default"
    result["ws_per_message_deflate"] = args.deflate
    text = json.dumps(result, indent=1)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
