"""Group commit for row writes that callers await one by one (connections, participations).

Items submitted while a batch is in flight wait in a queue; the next batch takes all of them
and writes them in ONE statement (one round trip, one commit). A caller's `submit` returns
only once its batch has committed, so "durable before the client is told" holds as with a
write per item, while 100 concurrent connects cost a few commits instead of 100.

`key`: items with equal keys never share a batch (the later one waits for the next batch, in
submission order): a row trigger that reads what the previous row of the same device wrote
(the device session's counters) sees it committed, as it would one statement at a time.

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
    """One batch in flight at a time; everything queued meanwhile goes in the next one."""

    def __init__(
        self,
        write: Write[T, R],
        *,
        key: Callable[[T], Hashable] | None = None,
        max_batch: int = 1000,
    ) -> None:
        self._write = write
        self._key = key
        self._max_batch = max_batch
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    async def submit(self, item: T) -> R:
        """Queue `item`; returns its result once its batch committed. Cancelling the caller
        does not withdraw the item (it may already be written)."""
        return await asyncio.shield(self.enqueue(item))

    def enqueue(self, item: T) -> asyncio.Future[R]:
        """Queue `item`; the future settles once its batch committed (or failed)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="tuiz-group-commit")
        return future

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        if self._key is None:
            n = min(len(self._queue), self._max_batch)
            return [self._queue.popleft() for _ in range(n)]
        batch: list[tuple[T, asyncio.Future[R]]] = []
        keys: set[Hashable] = set()
        later: deque[tuple[T, asyncio.Future[R]]] = deque()
        while self._queue and len(batch) < self._max_batch:
            entry = self._queue.popleft()
            k = self._key(entry[0])
            if k in keys:
                later.append(entry)
            else:
                keys.add(k)
                batch.append(entry)
        later.extend(self._queue)
        self._queue = later
        return batch

    async def _run(self) -> None:
        while self._queue:
            batch = self._take()
            try:
                await self._flush(batch)
            except BaseException as exc:  # never leave a caller waiting forever
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

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
