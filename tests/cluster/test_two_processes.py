"""Two real `tuiz serve` processes sharing one PostgreSQL and one Redis.

Clients on different processes in one game room see each other; when Redis is killed each
process keeps serving its own clients, and cross-process delivery comes back with Redis.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest

from tests.cluster.redisproc import RedisProcess
from tests.factories import make_game, make_player
from tests.servers import ServerProcess, run_server
from tests.sioclient import Recorder, eventually

STEP = 3.0  # bound for any one local reply: generous, but far below a blocked Redis call


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def clients() -> AsyncIterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    await asyncio.gather(*(c.close() for c in made))


@pytest.fixture
def pair_factory() -> Iterator[ExitStack]:
    """Holds the server processes a test starts; stops them at the end."""
    with ExitStack() as stack:
        yield stack


def start_pair(stack: ExitStack, db_url: str, tmp_path: Path, redis: str) -> list[ServerProcess]:
    return [
        stack.enter_context(run_server(db_url, tmp_path, REDIS_URL=redis, TUIZ_LOG_LEVEL="info"))
        for _ in range(2)
    ]


async def connect(url: str, made: list[Recorder], device: str) -> Recorder:
    client = Recorder(url)
    made.append(client)
    await client.connect()
    await client.register(device)
    return client


async def metric(server: ServerProcess, name: str, labels: str = "") -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{server.url}/metrics", timeout=5)).text
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def await_fanout(server: ServerProcess, up: bool, timeout: float = 15) -> None:
    """Wait for a process to report its Redis subscription up (or down) on /metrics."""

    async def reached() -> bool:
        return await metric(server, "tuiz_redis_up") == (1.0 if up else 0.0)

    assert await eventually(reached, timeout=timeout), f"tuiz_redis_up never {up}"


async def await_log(server: ServerProcess, event: str, timeout: float = 15) -> None:
    async def logged() -> bool:
        return f'"event": "{event}"' in server.log()

    assert await eventually(logged, timeout=timeout), f"{event} not logged:\n{server.log()}"


async def join(client: Recorder, room: str) -> dict[str, object]:
    await client.emit("room:join", {"roomId": room})
    joined: dict[str, object] = await client.expect("room:joined", timeout=STEP)
    return joined


async def expect_from(client: Recorder, event: str, sid: str, timeout: float = STEP) -> None:
    """The next `event` about socket `sid`, passing over older ones about others."""
    async with asyncio.timeout(timeout):
        while (await client.expect(event, timeout=timeout))["socketId"] != sid:
            pass


async def game_with(db: asyncpg.Connection, *devices: str) -> str:
    """A game whose first device is the host (hosts hear who joins and leaves)."""
    game: UUID = await make_game(db)
    for i, device in enumerate(devices):
        await make_player(db, game, device, f"name-{device}", is_host=i == 0)
    return str(game)


async def test_room_events_cross_processes(
    db: asyncpg.Connection,
    db_url: str,
    tmp_path: Path,
    redis_url: str,
    pair_factory: ExitStack,
    clients: list[Recorder],
) -> None:
    one, two = start_pair(pair_factory, db_url, tmp_path, redis_url)
    room = await game_with(db, "dev-a", "dev-b")
    alice = await connect(one.url, clients, "dev-a")
    bob = await connect(two.url, clients, "dev-b")
    await asyncio.gather(await_fanout(one, up=True), await_fanout(two, up=True))

    await join(alice, room)
    await join(bob, room)
    seen = await alice.expect("room:user-joined")
    assert seen["socketId"] == bob.sid and seen["seq"] == 2

    await alice.emit("room:message", {"roomId": room, "message": {"text": "from one"}})
    got = await bob.expect("room:message")
    assert got["from"] == alice.sid and got["message"] == {"text": "from one"} and got["seq"] == 3
    assert (await alice.expect("room:message"))["seq"] == 3

    await bob.emit("room:message", {"roomId": room, "message": {"text": "from two"}})
    got = await alice.expect("room:message")
    assert got["from"] == bob.sid and got["seq"] == 4
    assert (await bob.expect("room:message"))["seq"] == 4

    await bob.emit("room:leave", {"roomId": room})
    await bob.expect("room:left")
    left = await alice.expect("room:user-left")
    assert left["socketId"] == bob.sid and left["seq"] == 5

    # Replies to one socket on its own process stay off Redis.
    published = await metric(one, "tuiz_redis_messages_total", '{direction="published"}')
    for _ in range(5):
        await alice.emit("ws:heartbeat")
        await alice.expect("ws:pong", timeout=STEP)
    assert await metric(one, "tuiz_redis_messages_total", '{direction="published"}') == published
    assert alice.pending("ws:error") == bob.pending("ws:error") == 0


async def test_redis_killed_and_restarted_mid_game(
    db: asyncpg.Connection,
    db_url: str,
    tmp_path: Path,
    stoppable_redis: RedisProcess,
    pair_factory: ExitStack,
    clients: list[Recorder],
) -> None:
    one, two = start_pair(pair_factory, db_url, tmp_path, stoppable_redis.url)
    room = await game_with(db, "dev-a1", "dev-a2", "dev-a3", "dev-b1", "dev-b2")
    a1 = await connect(one.url, clients, "dev-a1")
    a2 = await connect(one.url, clients, "dev-a2")
    b1 = await connect(two.url, clients, "dev-b1")
    await asyncio.gather(await_fanout(one, up=True), await_fanout(two, up=True))
    for client in (a1, a2, b1):
        await join(client, room)
    await a1.emit("room:message", {"roomId": room, "message": "before"})
    assert (await b1.expect("room:message"))["message"] == "before"
    assert (await a2.expect("room:message"))["message"] == "before"
    assert (await a1.expect("room:message"))["message"] == "before"

    stoppable_redis.stop()
    await asyncio.gather(await_log(one, "redis_fanout_down"), await_log(two, "redis_fanout_down"))
    await asyncio.gather(await_fanout(one, up=False), await_fanout(two, up=False))

    # Each process still serves its own clients, promptly and without errors.
    for n in range(3):
        await a1.emit("room:message", {"roomId": room, "message": f"local {n}"})
        assert (await a2.expect("room:message", timeout=STEP))["message"] == f"local {n}"
        assert (await a1.expect("room:message", timeout=STEP))["message"] == f"local {n}"
    for client in (a1, a2, b1):
        await client.emit("ws:heartbeat")
        await client.expect("ws:pong", timeout=STEP)
    a3 = await connect(one.url, clients, "dev-a3")  # new sockets are accepted too
    await join(a3, room)
    await expect_from(a1, "room:user-joined", a3.sid)
    b2 = await connect(two.url, clients, "dev-b2")
    await join(b2, room)  # b1 is a player: players are not told of joins; messages show it
    await b2.emit("room:message", {"roomId": room, "message": "local on two"})
    assert (await b1.expect("room:message", timeout=STEP))["message"] == "local on two"

    stoppable_redis.start()
    await asyncio.gather(
        await_log(one, "redis_fanout_resumed"), await_log(two, "redis_fanout_resumed")
    )
    await asyncio.gather(await_fanout(one, up=True), await_fanout(two, up=True))
    await crosses(a1, b2, room)
    await crosses(b1, a3, room)
    for client in (a1, a2, a3, b1, b2):
        assert client.pending("ws:error") == 0
    assert one.process.poll() is None and two.process.poll() is None
    down_lines = [line for line in one.log().splitlines() if "redis_fanout_down" in line]
    assert len(down_lines) == 1  # logged once per outage, not once per message


async def crosses(sender: Recorder, receiver: Recorder, room: str, deadline: float = 15) -> None:
    """Send until one message reaches the other process (fan-out is back), within a deadline."""
    async with asyncio.timeout(deadline):
        n = 0
        while True:
            n += 1
            text = f"after restart {n}"
            await sender.emit("room:message", {"roomId": room, "message": text})
            try:
                while True:
                    got = await receiver.expect("room:message", timeout=0.5)
                    if got["message"] == text:
                        return
            except TimeoutError:
                continue
