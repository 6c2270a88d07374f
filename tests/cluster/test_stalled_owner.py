"""A stalled owner wakes up behind the process that took its game over: real processes.

Two `tuiz serve` processes, A and B, share PostgreSQL and Redis. A game is created on A (A
owns it); the host's socket is on B, player P's on A, players Q and R on B (R never answers,
so question 1 stays open until the host reveals it). Then A is `SIGSTOP`ped: its PID still
runs, so B waits for A's lease to lapse, takes the game over and replays it. Q answers through
B. P, still talking to A, sends its answer: the frames wait in A's kernel buffer (checked in
/proc/net/tcp) until A is `SIGCONT`ed. P then behaves like a phone: on UNAVAILABLE, a timeout
or a dropped socket it sends the same answer id again (through B, with `game:rejoin`, once
its socket is gone).

What A does with P's buffered answer when it wakes is a race between its lease renewal (due
long ago) and the answer's handling; the test asserts the same outcome on both paths:
- the fence path: A still runs the game in memory, accepts the answer there, and the log
  refuses the write because the lease is B's (`event_log_lease_lost`); P gets UNAVAILABLE,
  sends again, and A (which has dropped the game) forwards the answer to B;
- the renewal path: A's renewal finds the lease gone first (`game_lease_lost`), drops the
  game, and forwards P's first answer to B.
The fence path is the one taken in practice: A's log said `event_log_lease_lost` in each of
14 runs on a loaded 2-core machine; the renewal path gets the same assertions should the race
go the other way. Either way P is acknowledged once, by B, and B's game (the host's reveal)
counts every answer the log holds. Without the fence (`EventLog.lease_owner` unset) A logs
P's answer behind B's back: the log has it, B's game does not, and the reveal counts one
answer (the test failed so in each of 10 runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import socketio

from tests.cluster.test_two_processes import await_log
from tests.gamehelpers import Player, connect_host, create_game, join_player, make_test_quiz
from tests.realtime.test_crash_recovery import _answering
from tests.servers import ServerProcess, run_server
from tests.sioclient import Recorder, eventually

LEASE_MS = 1500
WAIT = LEASE_MS / 1000 + 20  # generous bound for a takeover or a retried answer


@pytest.fixture
def pair(db_url: str, tmp_path: Path, redis_url: str) -> Iterator[list[ServerProcess]]:
    env = {
        "REDIS_URL": redis_url,
        "TUIZ_GAME_LEASE_MS": str(LEASE_MS),
        "TUIZ_LOAD_SAMPLE": "false",
        "TUIZ_LOG_LEVEL": "info",
    }
    with ExitStack() as stack:
        yield [stack.enter_context(run_server(db_url, tmp_path / name, **env)) for name in "ab"]


@pytest.fixture
async def clients() -> AsyncIterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


@contextlib.contextmanager
def stopped(server: ServerProcess) -> Iterator[None]:
    """SIGSTOP for the block; SIGCONT whatever happens in it."""
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def unread_bytes(port: int) -> int:
    """Bytes the kernel holds, not yet read, on the established connections to `port`."""
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # ESTABLISHED
                    total += int(fields[4].split(":")[1], 16)  # tx_queue:rx_queue
    return total


async def owner_pid(conn: asyncpg.Connection, game_id: uuid.UUID) -> int | None:
    owner = await conn.fetchval("SELECT owner FROM game_owners WHERE game_id = $1", game_id)
    return int(owner.split(":")[1]) if owner else None


class Phone:
    """Player P as a phone: sends the same answer again until it is acknowledged."""

    def __init__(self, player: Player, fallback: str, made: list[Recorder]) -> None:
        self.player = player
        self.client = player.client
        self.fallback = fallback  # where it reconnects when its socket drops (B)
        self.made = made
        self.acks: list[dict[str, Any]] = []
        self.attempts = 0

    async def send(self, answer: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        self.attempts += 1
        try:
            ack: dict[str, Any] = await self.client.sio.call(
                "game:answer:submit", answer, timeout=timeout
            )
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
            return None
        self.acks.append(ack)
        return ack

    async def reconnect(self) -> None:
        client = Recorder(self.fallback)
        self.made.append(client)
        await client.connect()
        await client.register(self.player.device_id)
        rejoin = {
            "gameId": self.player.game_id,
            "playerId": self.player.player_id,
            "resumeToken": self.player.ack["resumeToken"],
        }
        while True:
            back = await client.sio.call("game:rejoin", rejoin, timeout=10)
            if back["ok"]:
                break
            assert back["error"] == "UNAVAILABLE", back
            await asyncio.sleep(0.2)  # the owner is being taken over: ask again
        self.client = client

    async def until_acknowledged(
        self, answer: dict[str, Any], first: asyncio.Task[dict[str, Any] | None]
    ) -> dict[str, Any]:
        ack = await first
        async with asyncio.timeout(WAIT):
            while ack is None or not ack["ok"]:
                assert ack is None or ack["error"] == "UNAVAILABLE", ack
                if ack is not None:
                    await asyncio.sleep(0.2)  # a phone's back-off before sending again
                if not self.client.sio.connected:
                    await self.reconnect()
                ack = await self.send(answer, timeout=10)
        return ack


def choice_ids(started: dict[str, Any]) -> dict[str, str]:
    return {c["text"]: c["id"] for c in started["question"]["choices"]}


async def reveal(host_client: Recorder) -> tuple[dict[str, Any], dict[str, Any]]:
    """The reveal's `game:question:ended` and the `game:answer:stats` sent with it."""
    ended = await host_client.expect("game:question:ended", timeout=15)
    at = next(i for i, (_, data) in enumerate(host_client.log) if data is ended)
    while True:  # live tallies while answering went out under the same name: pass them over
        stats = await host_client.expect("game:answer:stats", timeout=15)
        if next(i for i, (_, data) in enumerate(host_client.log) if data is stats) > at:
            return ended, stats


async def test_a_stalled_owner_never_logs_behind_the_new_one(
    pair: list[ServerProcess], clients: list[Recorder], db_url: str
) -> None:
    a, b = pair
    quiz = await make_test_quiz(db_url, answering_time=240)  # no deadline passes mid-test
    game = await create_game(a.url, quiz, auto_advance=False, time_bonus=False)
    gid = uuid.UUID(game["id"])
    pin = game["game_code"]
    conn = await asyncpg.connect(db_url)
    try:
        assert await owner_pid(conn, gid) == a.process.pid
        host = await connect_host(b.url, game)
        clients.append(host.client)
        p = await join_player(a.url, pin, "P", "device-p")
        q = await join_player(b.url, pin, "Q", "device-q")
        r = await join_player(b.url, pin, "R", "device-r")  # never answers: no early reveal
        clients.extend(player.client for player in (p, q, r))
        assert (await host.command("game:flow:start"))["ok"]
        started = await _answering(p.client)
        await _answering(q.client)
        ids = choice_ids(started)
        question = started["question"]["id"]

        def answer(player: Player, pick: str) -> dict[str, Any]:
            return {
                "gameId": game["id"],
                "questionId": question,
                "answerId": f"{player.player_id}-q1",
                "choiceIds": [ids[pick]],
            }

        phone = Phone(p, b.url, clients)
        with stopped(a):
            # 1. A stalls: B takes the game over once A's lease lapses.
            async def taken_over() -> bool:
                return await owner_pid(conn, gid) == b.process.pid

            assert await eventually(taken_over, timeout=WAIT), "B never took the game over"
            await await_log(b, "game_adopted", timeout=WAIT)

            # 2. Q answers through B, the owner now.
            q_ack = await q.answer(question, answerId=f"{q.player_id}-q1", choiceIds=[ids["Osaka"]])
            assert q_ack["ok"], q_ack

            # 3. P answers on its socket to A: the frames wait in A's kernel buffer.
            before = unread_bytes(a.port)
            first = asyncio.create_task(phone.send(answer(p, "Tokyo"), timeout=15))

            async def buffered() -> bool:
                return unread_bytes(a.port) > before

            assert await eventually(buffered, timeout=10), "P's answer never reached A's socket"
        p_ack = await phone.until_acknowledged(answer(p, "Tokyo"), first)

        # 4. P acknowledged once, with its own answer id.
        assert p_ack["answerId"] == f"{p.player_id}-q1", p_ack
        assert [ack for ack in phone.acks if ack["ok"]] == [p_ack]
        assert all(ack["error"] == "UNAVAILABLE" for ack in phone.acks if not ack["ok"])

        # The host reveals through B: B's game counts both answers.
        assert (await host.command("game:flow:next"))["ok"]
        ended, stats = await reveal(host.client)
        counted = {choice: n for choice, n in ended["counts"].items() if n}
        assert counted == {ids["Tokyo"]: 1, ids["Osaka"]: 1}, f"B's game misses an answer: {ended}"
        assert stats["answered"] == 2 and stats["total"] == 3, stats
        assert await owner_pid(conn, gid) == b.process.pid

        # The log: gapless, one answer per player, and exactly the answers B's game counts
        # (nothing of A's was logged behind B's back).
        rows = await conn.fetch(
            "SELECT sequence_number, event_type, payload->>'player_id' AS player,"
            " payload->>'answer_id' AS answer_id, payload->'choice_ids'->>0 AS choice"
            " FROM game_events WHERE game_id = $1 ORDER BY sequence_number",
            gid,
        )
        assert [row["sequence_number"] for row in rows] == list(range(1, len(rows) + 1))
        answers = [row for row in rows if row["event_type"] == "game:answer:accepted"]
        assert sorted((row["player"], row["answer_id"]) for row in answers) == sorted(
            [(p.player_id, f"{p.player_id}-q1"), (q.player_id, f"{q.player_id}-q1")]
        )
        logged: dict[str, int] = {}
        for row in answers:
            logged[row["choice"]] = logged.get(row["choice"], 0) + 1
        assert logged == counted
    finally:
        await conn.close()

    # A did not crash, and it says it lost the game.
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{a.url}/health")).status_code == 200
    assert a.process.poll() is None
    said = a.log()
    fenced = '"event": "event_log_lease_lost"' in said
    assert fenced or '"event": "game_lease_lost"' in said, said
    if fenced:  # P's answer was the one decision A made: refused, not acknowledged
        assert not phone.acks[0]["ok"] and phone.attempts >= 2, phone.acks
