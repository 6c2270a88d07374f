"""Group commit for row writes that callers await one by one (connections, participations).

Items submitted while `in_flight` batches are being written wait in a queue; the next batch
takes all of them and writes them in ONE statement (one round trip, one commit). A caller's
`submit` returns only once its batch has committed, so "durable before the client is told"
holds as with a write per item, while 100 concurrent connects cost a few commits instead of
100. With `in_flight` 2 an item arriving while one batch is being written starts its own at
once instead of waiting for that one's round trip.

`key`: items with equal keys never share a batch nor are written by two batches at once (the
later one waits for the earlier one's batch to commit, in submission order): a row trigger
that reads what the previous row of the same device wrote (the device session's counters)
sees it committed, as it would one statement at a time.

A batch the database rejects for its data (SQLSTATE class 22/23, RAISE) is split in halves
until only the bad items fail with the database's own error; a connection failure fails the
whole batch with it (whether it committed is unknown, as for any single write).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

import asyncpg

T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[Sequence[T]], Awaitable[Sequence[R]]]


def is_data_error(exc: BaseException) -> bool:
    """Errors one bad row can cause (SQLSTATE class 22/23, RAISE); splitting the batch helps."""
    state = getattr(exc, "sqlstate", None) or ""
    return isinstance(exc, asyncpg.PostgresError) and (
        state.startswith(("22", "23")) or state == "P0001"
    )


class GroupCommit(Generic[T, R]):
    """Up to `in_flight` batches being written at a time; everything queued meanwhile goes in
    the next one."""

    def __init__(
        self,
        write: Write[T, R],
        *,
        key: Callable[[T], Hashable] | None = None,
        max_batch: int = 1000,
        in_flight: int = 1,
    ) -> None:
        self._write = write
        self._key = key
        self._max_batch = max_batch
        self._in_flight = max(1, in_flight)
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._writing: set[asyncio.Task[None]] = set()
        self._busy: set[Hashable] = set()  # keys of the items being written
        self._starting: asyncio.Task[None] | None = None  # started, has not taken its items
        self.batches = 0

    async def submit(self, item: T) -> R:
        """Queue `item`; returns its result once its batch committed. Cancelling the caller
        does not withdraw the item (it may already be written)."""
        return await asyncio.shield(self.enqueue(item))

    def enqueue(self, item: T) -> asyncio.Future[R]:
        """Queue `item`; the future settles once its batch committed (or failed)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._start()
        return future

    def _start(self) -> None:
        """Start a batch when a slot is free and the queue holds an item that may go. The
        batch is taken when its task first runs, so whatever is queued in the same turn of
        the loop (a join batch's participations, sockets read together) goes with it."""
        if self._starting or len(self._writing) >= self._in_flight or not self._ready():
            return
        task = asyncio.create_task(self._run(), name="tuiz-group-commit")
        self._starting = task
        self._writing.add(task)
        task.add_done_callback(self._done)

    def _ready(self) -> bool:
        """Whether a queued item may go now (not every one waits for a key being written)."""
        if self._key is None or not self._busy:
            return bool(self._queue)
        return any(self._key(item) not in self._busy for item, _ in self._queue)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._writing.discard(task)
        if self._starting is task:  # cancelled before it ran
            self._starting = None
        self._start()

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        if self._key is None:
            n = min(len(self._queue), self._max_batch)
            return [self._queue.popleft() for _ in range(n)]
        batch: list[tuple[T, asyncio.Future[R]]] = []
        later: deque[tuple[T, asyncio.Future[R]]] = deque()
        while self._queue and len(batch) < self._max_batch:
            entry = self._queue.popleft()
            k = self._key(entry[0])
            if k in self._busy:  # in this batch or one being written: it waits, in order
                later.append(entry)
            else:
                self._busy.add(k)
                batch.append(entry)
        later.extend(self._queue)
        self._queue = later
        return batch

    async def _run(self) -> None:
        """Write a batch, then whatever queued meanwhile, in this task: the next batch starts
        in the same turn of the loop (a new task would wait a turn or two, under load
        milliseconds, for each batch of a one-at-a-time writer)."""
        self._starting = None
        batch = self._take()
        self._start()  # what this batch left (keys it holds, max_batch) may start another
        while batch:
            try:
                await self._flush(batch)
            except BaseException as exc:  # never leave a caller waiting forever
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            finally:
                if self._key is not None:
                    self._busy.difference_update(self._key(item) for item, _ in batch)
            batch = self._take() if self._queue else []

    async def _flush(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:
            if not is_data_error(exc) or len(batch) == 1:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            mid = len(batch) // 2
            await self._flush(batch[:mid])
            await self._flush(batch[mid:])
            return
        self.batches += 1
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
