"""Redis fan-out for python-socketio that never lets Redis delay or break local delivery.

python-socketio's `AsyncRedisManager` already delivers an emit to this process's clients and
then publishes it for the others. Three things it does are wrong for a live quiz: a publish to
an unresponsive Redis blocks the emitting handler (10 s per emit, measured against a stopped
`redis-server`) and logs twice per message; its listener backs off up to 60 s, so fan-out
resumes up to a minute after Redis does; and every emit to a single socket on this process is
published too. This subclass keeps the library's message format and handlers and replaces
only `_publish`, `_listen` and the single-socket case of `emit`.

Publishing never holds up the emitter: messages are queued and one writer task sends them in
order, in pipelined batches, each bounded by `publish_timeout`. The first failure marks Redis
down (one log line per outage); while down, publishes are skipped and counted. The listener
owns recovery: it resubscribes with a short capped backoff, and a successful subscribe marks
Redis up again.
Messages emitted during an outage reach local clients only; the event log keeps them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any

import socketio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tuiz.logs import get_logger
from tuiz.metrics import Metrics
from tuiz.realtime.fastemit import FastEmitManager

log = get_logger(__name__)

OUTBOX_MAX = 50_000  # messages waiting for Redis before emitters wait for the writer
BATCH_MAX = 500  # messages per pipelined round trip

serving_remote: ContextVar[str | None] = ContextVar("serving_remote", default=None)
"""The socket (of another process) whose event this task is handling, if any."""


@dataclass
class FanoutState:
    """What `/metrics` and `/ready` may show about this process's link to Redis."""

    up: bool = False
    published: int = 0
    received: int = 0
    skipped: int = 0
    faults: int = 0
    outages: int = 0
    last_error: str | None = None
    down_since: float | None = None

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)


class RedisFanout(socketio.AsyncRedisManager, FastEmitManager):  # type: ignore[misc]
    """`AsyncRedisManager` with bounded publishes, fast resubscription and visible state."""

    name = "tuiz-redis"

    def __init__(
        self,
        url: str,
        *,
        channel: str = "tuiz",
        metrics: Metrics | None = None,
        publish_timeout: float = 5.0,  # per batch; emitters never wait for it
        connect_timeout: float = 1.0,
        reconnect_min: float = 0.1,
        reconnect_max: float = 2.0,
        probe_interval: float = 5.0,
    ) -> None:
        # One immediate reconnect inside redis-py, for a pooled connection that died with an
        # old Redis; no backoff, so a real outage surfaces at once and we stop publishing.
        # The listener below owns every other retry.
        options = {
            "retry": Retry(NoBackoff(), 1),
            "socket_connect_timeout": connect_timeout,
        }
        super().__init__(url, channel=channel, redis_options=options)
        self.metrics = metrics
        self.publish_timeout = publish_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.probe_interval = probe_interval
        self.state = FanoutState()
        self._suspect = False  # a publish failed; the listener should check Redis now
        self._outbox: collections.deque[str] = collections.deque()
        self._drained = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        # Told when a named room's membership on this process changes (cluster presence).
        self.room_changed: Callable[[str], None] | None = None
        self._redis_connect()  # builds the client (lazy: no connection is opened yet)

    # -- rooms -------------------------------------------------------------------------

    async def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        """A socket served for another process (`forward.py`) enters the room there, when
        that process applies the reply: not through Redis now, so it is counted once."""
        if sid == serving_remote.get() and not self.is_connected(sid, namespace):
            return
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if self.room_changed is not None and room != sid:
            self.room_changed(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        if self.room_changed is not None and room != sid and room is not None:
            self.room_changed(room)

    # -- sending -----------------------------------------------------------------------

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> Any:
        """An emit to one socket connected here (pongs, acks, errors) stays off Redis."""
        target = to or room
        if isinstance(target, str) and self.is_connected(target, namespace or "/"):
            kwargs["ignore_queue"] = True
        return await super().emit(
            event, data, namespace=namespace, room=target, skip_sid=skip_sid,
            callback=callback, **kwargs,
        )  # fmt: skip

    async def _publish(self, data: Any) -> None:
        """Queue for publishing, in order, or drop while Redis is known to be down.

        The emitting handler does not wait for Redis: one writer task sends what is queued in
        pipelined batches (messages to sockets on other processes are one round trip per
        batch, not one each; a live game's own go through the bus, `deliver.py`). Only a full
        outbox makes the emitter wait."""
        if self.state.down_since is not None:
            self._count("skipped")
            return
        while len(self._outbox) >= OUTBOX_MAX:
            self._drained.clear()
            await self._drained.wait()
        self._outbox.append(self.json.dumps(data))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="tuiz-fanout-writer")

    async def _write(self) -> None:
        """Send the outbox in batches; a batch that fails within `publish_timeout` marks
        Redis down and is dropped (counted as skipped), with whatever was queued behind it."""
        while self._outbox:
            batch = [self._outbox.popleft() for _ in range(min(len(self._outbox), BATCH_MAX))]
            self._drained.set()
            try:
                async with asyncio.timeout(self.publish_timeout):
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for message in batch:
                            pipe.publish(self.channel, message)
                        await pipe.execute()
            except Exception as exc:
                self._suspect = True
                self._fault(exc, "publish")
                dropped = len(batch) + len(self._outbox)
                self._outbox.clear()
                self._drained.set()
                for _ in range(dropped):
                    self._count("skipped")
                return
            for _ in batch:
                self._count("published")

    # -- receiving ---------------------------------------------------------------------

    async def _listen(self) -> AsyncIterator[Any]:
        """Yield other processes' messages forever, resubscribing after any Redis fault."""
        backoff = self.reconnect_min
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await pubsub.subscribe(self.channel)
                self._mark_up()
                backoff = self.reconnect_min
                async for message in self._messages(pubsub):
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._fault(exc, "listen")
                with contextlib.suppress(Exception):  # drop pooled connections to the old Redis
                    await self.redis.connection_pool.disconnect()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.reconnect_max)

    async def _messages(self, pubsub: Any) -> AsyncIterator[Any]:
        """Decoded messages from other hosts; PING Redis when idle or after a failed publish."""
        channel = self.channel.encode()
        idle_since = time.monotonic()
        while True:
            if self._suspect or time.monotonic() - idle_since >= self.probe_interval:
                async with asyncio.timeout(self.connect_timeout):
                    await self.redis.ping()
                self._suspect = False
                idle_since = time.monotonic()
                self._mark_up()
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is None:
                continue
            idle_since = time.monotonic()
            if message.get("type") != "message" or message.get("channel") != channel:
                continue
            try:
                data = self.json.loads(message["data"])
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            if data.get("host_id") == self.host_id and data.get("method") != "callback":
                continue  # our own publish, already delivered locally
            self._count("received")
            yield data

    # -- state -------------------------------------------------------------------------

    def _mark_up(self) -> None:
        if self.state.up:
            return
        self.state.up = True
        if self.metrics is not None:
            self.metrics.redis_up.set(1)
        if self.state.down_since is not None:
            log.warning(
                "redis_fanout_resumed",
                channel=self.channel,
                down_seconds=round(time.monotonic() - self.state.down_since, 3),
                skipped=self.state.skipped,
            )
        else:
            log.info("redis_fanout_connected", channel=self.channel)
        self.state.down_since = None

    def _fault(self, exc: BaseException, during: str) -> None:
        """Count every fault; log only the one that starts an outage."""
        self.state.faults += 1
        self.state.last_error = f"{type(exc).__name__}: {exc}"
        if self.metrics is not None:
            self.metrics.redis_faults.inc()
            self.metrics.redis_up.set(0)
        if self.state.down_since is None:
            self.state.outages += 1
            self.state.down_since = time.monotonic()
            log.error(
                "redis_fanout_down",
                channel=self.channel,
                during=during,
                error=self.state.last_error,
                note="serving local clients only until Redis returns",
            )
        self.state.up = False

    def _count(self, direction: str) -> None:
        setattr(self.state, direction, getattr(self.state, direction) + 1)
        if self.metrics is not None:
            self.metrics.redis_messages.labels(direction).inc()

    async def close(self) -> None:
        """Stop listening and release the Redis connections (tests, embedding)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), self.publish_timeout)
            self._writer.cancel()
        thread = getattr(self, "thread", None)
        if thread is not None:
            thread.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await thread
        await self.redis.aclose()
