"""Request/reply between tuiz processes over Redis pub/sub, each process on its own channel.

A process subscribes to `tuiz:proc:<owner id>` (the id it writes into `game_owners`, so whoever
reads a game's lease knows where to send its commands) and to one broadcast channel. A request
carries an id and the sender's id; the answer comes back on the sender's channel. Every wait is
bounded: a publish that no process receives (the owner is gone) or a reply that does not come
within `timeout` is UNAVAILABLE, as is every request while Redis is away. Redis carries these
messages only; the answer is sent once the owner has made the command durable, so a lost reply
never loses an acknowledged command, and a retried one is decided again by the owner.

Every message queued in one turn of the event loop for one channel travels as one PUBLISH
(`sender` + newline + a JSON array of messages), in the order queued: at 10,000 players a
question is thousands of forwarded answers, replies and per-player events a second, and one
Redis message each cost every process a pub/sub parse, a decode and a task. A process skips
its own deliveries (`DELIVER`) without decoding them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tuiz.errors import ErrorCode, TuizError, client_error
from tuiz.logs import get_logger

log = get_logger(__name__)

BROADCAST = "tuiz:cluster"
DELIVER = "tuiz:cluster:deliver"
"""Every process but the sender: what one process emits for sockets held by the others."""
DELIVER_BYTES = DELIVER.encode()

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def inbox(owner: str) -> str:
    """The channel a process listens on: named by its lease owner id."""
    return f"tuiz:proc:{owner}"


DELIVER_BACKLOG_MAX = 50_000  # messages waiting for Redis beyond which deliveries are dropped
LIVENESS_CHECK = 0.5  # seconds between checks that the owner still listens, while waiting


class OwnerGone(TuizError):
    """No process listens on the owner's channel: it died (its lease has not lapsed yet).
    `delivered`: it died after receiving the request, which may or may not have been applied."""

    def __init__(self, owner: str, *, delivered: bool) -> None:
        super().__init__(
            ErrorCode.UNAVAILABLE,
            "the process running this game stopped while handling this; try again"
            if delivered
            else "the process running this game is gone; another takes it over shortly, try again",
        )
        self.owner = owner
        self.delivered = delivered


class ClusterBus:
    """This process's end of the cluster link: send requests, answer them, hear broadcasts."""

    def __init__(
        self,
        url: str,
        owner: str,
        *,
        timeout: float = 5.0,
        connect_timeout: float = 1.0,
        publish_timeout: float = 10.0,
        reconnect_max: float = 2.0,
    ) -> None:
        self.owner = owner
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        # A batch that takes longer means Redis is stuck (refused connections fail at once);
        # a busy event loop alone must not turn sends into UNAVAILABLE: at 10,000 players the
        # loops of all three processes lagged by seconds, and 5 s refused 5,000 answers.
        self.publish_timeout = publish_timeout
        self.reconnect_max = reconnect_max
        self.redis = aioredis.Redis.from_url(
            url, retry=Retry(NoBackoff(), 1), socket_connect_timeout=connect_timeout
        )
        self.handlers: dict[str, Handler] = {}  # requests: their result is the reply
        self.notices: dict[str, Handler] = {}  # one-way messages and broadcasts
        # One-way messages handled at once, in arrival order, without a task (deliveries).
        self.inline: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._outbox: collections.deque[tuple[str, bytes, asyncio.Future[int] | None]] = (
            collections.deque()
        )
        self._prefix = owner.encode() + b"\n"
        self._writer: asyncio.Task[None] | None = None
        self._checks: dict[str, asyncio.Future[int | None]] = {}
        # Requests waiting for each owner's reply; one watcher per owner checks it listens.
        self._waiting: dict[str, set[asyncio.Future[dict[str, Any]]]] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._work: set[asyncio.Task[None]] = set()
        self.up = False
        self.subscribed = asyncio.Event()
        self.forwarded = 0
        self.served = 0
        self.failed = 0

    # -- sending -------------------------------------------------------------------------

    def _queue(
        self, channel: str, message: dict[str, Any], sent: asyncio.Future[int] | None
    ) -> None:
        self._outbox.append((channel, orjson.dumps(message), sent))  # a bad one fails here
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="tuiz-cluster-bus-writer")

    async def _send(self, channel: str, message: dict[str, Any]) -> int:
        """Publish; how many processes received it. Sends of every task share one writer that
        batches them (thousands of forwarded answers a second are a few round trips and a few
        Redis messages, not a round trip and a message each)."""
        sent: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue(channel, message, sent)
        try:
            return await sent
        except Exception as exc:
            self.failed += 1
            raise TuizError(
                ErrorCode.UNAVAILABLE,
                "this game runs on another tuiz process and the link to it (Redis) is down;"
                " try again shortly",
            ) from exc

    def deliver(self, op: str, body: dict[str, Any]) -> None:
        """To every other process, not waited for, in order with every other `deliver`; lost
        while Redis is down (socket events, whose receivers catch up by `seq`)."""
        if self.up and len(self._outbox) < DELIVER_BACKLOG_MAX:
            self._queue(DELIVER, {"op": op, "body": body}, None)

    async def _write(self) -> None:
        while self._outbox:
            batch = [self._outbox.popleft() for _ in range(min(len(self._outbox), 1000))]
            channels: dict[str, list[bytes]] = {}
            for channel, message, _ in batch:
                channels.setdefault(channel, []).append(message)
            payloads = [
                (c, b"".join((self._prefix, b"[", b",".join(m), b"]"))) for c, m in channels.items()
            ]
            try:
                async with asyncio.timeout(self.publish_timeout):
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for channel, payload in payloads:
                            pipe.publish(channel, payload)
                        counts = await pipe.execute()
            except Exception as exc:
                for _, _, sent in batch:
                    if sent is not None and not sent.done():
                        sent.set_exception(exc)
                continue
            received = {c: int(n) for (c, _), n in zip(payloads, counts, strict=True)}
            for channel, _, sent in batch:
                if sent is not None and not sent.done():
                    sent.set_result(received[channel])

    async def request(self, owner: str, op: str, body: dict[str, Any]) -> Any:
        """The owner's answer to `op`, its typed error raised here, or UNAVAILABLE."""
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            message = {"op": op, "id": request_id, "from": self.owner, "body": body}
            if await self._send(inbox(owner), message) == 0:
                self.failed += 1
                raise OwnerGone(owner, delivered=False)
            self.forwarded += 1
            reply = await self._reply(owner, future)
        finally:
            self._pending.pop(request_id, None)
        error = reply.get("error")
        if isinstance(error, dict):
            details = error.get("details") or {}
            raise TuizError(ErrorCode(error["error"]), str(error["message"]), **details)
        return reply.get("result")

    async def _reply(self, owner: str, future: asyncio.Future[dict[str, Any]]) -> dict[str, Any]:
        """The reply, or UNAVAILABLE after `timeout`, or OwnerGone as soon as the owner is
        seen to have stopped listening (it died mid-request). One timer per request and one
        watcher per owner, however many requests wait (not a timeout task per request)."""
        loop = asyncio.get_running_loop()

        def too_late() -> None:
            if not future.done():
                self.failed += 1
                future.set_exception(
                    TuizError(
                        ErrorCode.UNAVAILABLE,
                        "the process running this game did not answer in time; try again",
                    )
                )

        timer = loop.call_later(self.timeout, too_late)
        waiting = self._waiting.setdefault(owner, set())
        waiting.add(future)
        watcher = self._watchers.get(owner)
        if watcher is None or watcher.done():
            self._watchers[owner] = asyncio.create_task(self._watch(owner))
        try:
            return await future
        finally:
            timer.cancel()
            waiting.discard(future)

    async def _watch(self, owner: str) -> None:
        """While requests wait on `owner`: every LIVENESS_CHECK, fail those that were already
        waiting when a check found nobody listening on its channel."""
        waiting = self._waiting.get(owner)
        while waiting:
            await asyncio.sleep(LIVENESS_CHECK)
            before = [f for f in waiting if not f.done()]
            if not before:
                continue
            if await self._listeners(owner) == 0:
                for future in before:
                    if not future.done():
                        self.failed += 1
                        future.set_exception(OwnerGone(owner, delivered=True))
        self._waiting.pop(owner, None)

    async def _listeners(self, owner: str) -> int | None:
        """Processes subscribed to `owner`'s channel; None when Redis cannot say. One check
        per owner at a time, shared by every request waiting on it (thousands of waiting
        answers each asking took every pooled connection: MaxConnectionsError)."""
        checking = self._checks.get(owner)
        if checking is None:
            checking = asyncio.ensure_future(self._count_listeners(owner))
            self._checks[owner] = checking
            checking.add_done_callback(lambda _f: self._checks.pop(owner, None))
        return await asyncio.shield(checking)

    async def _count_listeners(self, owner: str) -> int | None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                counts = await self.redis.pubsub_numsub(inbox(owner))
        except Exception:
            return None
        return int(counts[0][1]) if counts else 0

    async def notify(self, owner: str, op: str, body: dict[str, Any]) -> bool:
        """A one-way message; False when nobody received it (or Redis is down)."""
        try:
            return await self._send(inbox(owner), {"op": op, "from": self.owner, "body": body}) > 0
        except TuizError:
            return False

    async def broadcast(self, op: str, body: dict[str, Any]) -> None:
        """To every process (this one included); lost while Redis is down."""
        with contextlib.suppress(TuizError):
            await self._send(BROADCAST, {"op": op, "from": self.owner, "body": body})

    # -- receiving -----------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="tuiz-cluster-bus")

    async def _listen_forever(self) -> None:
        backoff = 0.05
        while True:
            pubsub: Any = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await pubsub.subscribe(inbox(self.owner), BROADCAST, DELIVER)
                if not self.up:
                    log.info("cluster_bus_up", owner=self.owner)
                self.up = True
                self.subscribed.set()
                backoff = 0.05
                await self._receive(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.up:
                    log.error("cluster_bus_down", error=repr(exc))
                self.up = False
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await self.redis.connection_pool.disconnect()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.reconnect_max)

    async def _receive(self, pubsub: Any) -> None:
        idle_since = time.monotonic()
        while True:
            if time.monotonic() - idle_since > 2.0:  # notice a dead Redis while idle
                async with asyncio.timeout(self.connect_timeout):
                    await self.redis.ping()
                idle_since = time.monotonic()
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is None or message.get("type") != "message":
                continue
            idle_since = time.monotonic()
            self._received(message.get("channel"), message["data"])

    def _received(self, channel: Any, data: bytes) -> None:
        sender, _, payload = data.partition(b"\n")
        if channel == DELIVER_BYTES and sender == self._prefix[:-1]:
            return  # our own deliveries: made here already
        try:
            messages = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(messages, list):
            return
        for item in messages:
            if isinstance(item, dict):
                self._dispatch(item)

    def _dispatch(self, data: dict[str, Any]) -> None:
        reply_to = data.get("reply")
        if isinstance(reply_to, int):
            future = self._pending.get(reply_to)
            if future is not None and not future.done():
                future.set_result(data)
            return
        op = data.get("op")
        body = data.get("body")
        if not isinstance(op, str) or not isinstance(body, dict):
            return
        if "id" in data:
            self._spawn(self._answer(op, data["id"], str(data.get("from", "")), body))
        elif op in self.inline:
            try:
                self.inline[op](body)
            except Exception as exc:
                log.warning("cluster_notice_failed", op=op, error=repr(exc))
        elif op in self.notices:
            self._spawn(self._notice(op, body))

    def _spawn(self, work: Awaitable[None]) -> None:
        """Started in arrival order: a game's commands reach its runner in the order sent."""
        task = asyncio.ensure_future(work)
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _answer(self, op: str, request_id: Any, sender: str, body: dict[str, Any]) -> None:
        handler = self.handlers.get(op)
        reply: dict[str, Any] = {"reply": request_id}
        try:
            if handler is None:
                raise TuizError(ErrorCode.UNAVAILABLE, f"this process does not serve {op!r}")
            reply["result"] = await handler(body)
            self.served += 1
        except Exception as exc:
            error = client_error(exc)
            if error is None:
                log.error("cluster_request_failed", op=op, exc_info=exc)
                error = TuizError(ErrorCode.INTERNAL_ERROR, "the server failed to handle this")
            reply["error"] = error.to_payload()
        with contextlib.suppress(TuizError):
            await self._send(inbox(sender), reply)

    async def _notice(self, op: str, body: dict[str, Any]) -> None:
        try:
            await self.notices[op](body)
        except Exception as exc:
            log.warning("cluster_notice_failed", op=op, error=repr(exc))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in [*self._work, *self._watchers.values()]:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
