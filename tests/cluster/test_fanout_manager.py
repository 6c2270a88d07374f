"""`RedisFanout` against a real Redis that the test kills, freezes and restarts.

No sockets here: a python-socketio server object that serves nothing, a manager on it, and a
plain redis-py client watching the channel. The two-process tests cover delivery to clients.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
import socketio
from redis import asyncio as aioredis

from tests.cluster.redisproc import RedisProcess
from tests.sioclient import eventually
from tuiz.cluster.fanout import RedisFanout
from tuiz.metrics import Metrics
from tuiz.realtime import jsoncodec


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Await a state the manager reaches on its own (a condition, not a delay)."""

    async def check() -> bool:
        return condition()

    assert await eventually(check, timeout=timeout, interval=0.02)


@pytest.fixture
async def manager(stoppable_redis: RedisProcess) -> AsyncIterator[RedisFanout]:
    fanout = RedisFanout(stoppable_redis.url, metrics=Metrics(), publish_timeout=0.3)
    socketio.AsyncServer(client_manager=fanout, async_mode="asgi", json=jsoncodec)
    fanout.initialize()  # what the server does on its first connection
    try:
        yield fanout
    finally:
        await fanout.close()


class Spy:
    """A plain subscriber on the fan-out channel."""

    def __init__(self, url: str, channel: str) -> None:
        self.client = aioredis.from_url(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.channel = channel

    async def __aenter__(self) -> Spy:
        await self.pubsub.subscribe(self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pubsub.aclose()
        await self.client.aclose()

    async def next(self, timeout: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.pubsub.get_message(timeout=1)
                if message is not None and message["type"] == "message":
                    data: dict[str, Any] = orjson.loads(message["data"])
                    return data


def _metric(fanout: RedisFanout, name: str, **labels: str) -> float | None:
    assert fanout.metrics is not None
    value: float | None = fanout.metrics.registry.get_sample_value(name, labels)
    return value


async def test_publishes_receives_survives_a_crash_and_resumes(
    manager: RedisFanout, stoppable_redis: RedisProcess
) -> None:
    server = manager.server
    await until(lambda: manager.state.up)
    assert _metric(manager, "tuiz_redis_up") == 1

    async with Spy(stoppable_redis.url, manager.channel) as spy:
        await server.emit("quiz:hello", {"n": 1}, room="game-1")
        sent = await spy.next()
        assert (sent["event"], sent["data"], sent["room"]) == ("quiz:hello", [{"n": 1}], "game-1")
        assert sent["host_id"] == manager.host_id

        other = {"method": "emit", "event": "x", "data": [1], "namespace": "/", "room": "nobody"}
        await spy.client.publish(manager.channel, orjson.dumps({**other, "host_id": "elsewhere"}))
        await until(lambda: manager.state.received == 1)
    await until(lambda: manager.state.published == 1)  # counted once its batch is sent
    assert manager.state.received == 1  # its own publish came back and was not counted

    stoppable_redis.stop()
    await until(lambda: not manager.state.up)
    assert _metric(manager, "tuiz_redis_up") == 0
    for n in range(20):  # none of these waits for Redis, and none raises
        await asyncio.wait_for(server.emit("quiz:hello", {"n": n}, room="game-1"), 1)
    assert manager.state.skipped == 20
    assert _metric(manager, "tuiz_redis_messages_total", direction="skipped") == 20
    assert manager.state.outages == 1
    assert manager.state.last_error

    stoppable_redis.start()
    await until(lambda: manager.state.up)  # reconnect backoff is capped at 2 s
    async with Spy(stoppable_redis.url, manager.channel) as spy:
        await server.emit("quiz:hello", {"n": "again"}, room="game-1")
        assert (await spy.next())["data"] == [{"n": "again"}]
    assert manager.state.outages == 1
    await until(lambda: manager.state.published == 2)


async def test_a_frozen_redis_costs_one_publish_timeout_then_nothing(
    manager: RedisFanout, stoppable_redis: RedisProcess
) -> None:
    """SIGSTOP: connections stay open but nothing answers (the stock manager blocks ~10 s)."""
    server = manager.server
    await until(lambda: manager.state.up)
    assert stoppable_redis.process is not None
    pid = stoppable_redis.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        # The emit returns at once (the writer publishes); the writer's batch times out.
        await asyncio.wait_for(server.emit("quiz:hello", {"n": 1}, room="g"), 0.5)
        await until(lambda: not manager.state.up, timeout=2)
        assert manager.state.faults >= 1
        await asyncio.wait_for(server.emit("quiz:hello", {"n": 2}, room="g"), 0.5)
        assert manager.state.skipped == 2
    finally:
        os.kill(pid, signal.SIGCONT)
    await until(lambda: manager.state.up)
    assert manager.state.outages == 1


async def test_redis_absent_at_start_then_arriving(stoppable_redis: RedisProcess) -> None:
    stoppable_redis.stop()
    fanout = RedisFanout(stoppable_redis.url, metrics=Metrics())
    server = socketio.AsyncServer(client_manager=fanout, async_mode="asgi", json=jsoncodec)
    fanout.initialize()
    try:
        await asyncio.wait_for(server.emit("quiz:hello", {}, room="g"), 2)
        await until(lambda: fanout.state.outages == 1)
        assert not fanout.state.up
        stoppable_redis.start()
        await until(lambda: fanout.state.up)
        async with Spy(stoppable_redis.url, fanout.channel) as spy:
            await server.emit("quiz:hello", {"n": 1}, room="g")
            assert (await spy.next())["data"] == [{"n": 1}]
    finally:
        await fanout.close()
