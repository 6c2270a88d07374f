"""GroupCommit with two batches in flight: a new item does not wait for a batch being
written, and a key's items are still written one batch after the other, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tuiz.store.batch import GroupCommit


class Writes:
    """A write function whose batches finish when the test says so."""

    def __init__(self) -> None:
        self.started: list[list[str]] = []
        self.gates: list[asyncio.Event] = []
        self.committed: list[str] = []
        self.changed = asyncio.Condition()

    async def __call__(self, batch: Sequence[str]) -> list[str]:
        gate = asyncio.Event()
        async with self.changed:
            self.started.append(list(batch))
            self.gates.append(gate)
            self.changed.notify_all()
        await gate.wait()
        if "bad" in batch:
            raise RuntimeError("connection lost")
        self.committed.extend(batch)
        return [item.upper() for item in batch]

    async def until_started(self, n: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.started) >= n)

    def finish(self, i: int) -> None:
        self.gates[i].set()


async def test_a_second_batch_starts_while_the_first_is_written() -> None:
    writes = Writes()
    commits: GroupCommit[str, str] = GroupCommit(writes, in_flight=2)
    a = commits.enqueue("a")
    await writes.until_started(1)
    b = commits.enqueue("b")
    await writes.until_started(2)  # not behind a's round trip
    c, d = commits.enqueue("c"), commits.enqueue("d")
    await asyncio.sleep(0)
    assert writes.started == [["a"], ["b"]]  # both slots taken: c and d wait together
    writes.finish(1)
    assert await b == "B"
    await writes.until_started(3)
    assert writes.started[2] == ["c", "d"]
    assert not a.done()
    writes.finish(0)
    writes.finish(2)
    assert [await a, await c, await d] == ["A", "C", "D"]


async def test_a_key_waits_for_its_earlier_batch() -> None:
    writes = Writes()
    commits: GroupCommit[str, str] = GroupCommit(writes, key=lambda s: s[0], in_flight=2)
    first = commits.enqueue("x1")
    await writes.until_started(1)
    second, other = commits.enqueue("x2"), commits.enqueue("y1")
    await writes.until_started(2)
    assert writes.started == [["x1"], ["y1"]]  # x2 stays queued while x1 is written
    writes.finish(1)
    assert await other == "Y1"
    third = commits.enqueue("z1")  # a free slot: z1 goes, x2 still waits for x1
    await writes.until_started(3)
    assert writes.started[2] == ["z1"]
    writes.finish(2)
    assert await third == "Z1"
    assert not second.done()
    writes.finish(0)
    assert await first == "X1"
    await writes.until_started(4)
    assert writes.started[3] == ["x2"]
    writes.finish(3)
    assert await second == "X2"
    assert writes.committed == ["y1", "z1", "x1", "x2"]


async def test_a_failed_batch_fails_its_callers_only() -> None:
    writes = Writes()
    commits: GroupCommit[str, str] = GroupCommit(writes, key=lambda s: s, in_flight=2)
    bad = commits.enqueue("bad")
    await writes.until_started(1)
    good = commits.enqueue("good")
    await writes.until_started(2)
    writes.finish(0)
    writes.finish(1)
    assert await good == "GOOD"
    try:
        await bad
    except RuntimeError as exc:
        assert str(exc) == "connection lost"
    else:
        raise AssertionError("the failed batch's caller was told it committed")
    again = commits.enqueue("bad-no-more")  # the key is free again, the writer still runs
    await writes.until_started(3)
    writes.finish(2)
    assert await again == "BAD-NO-MORE"


async def test_items_queued_in_the_same_turn_share_a_batch() -> None:
    """A join batch's participations are queued one after another without a pause: they go
    in one write, not the first alone and the rest after its round trip."""
    writes = Writes()
    commits: GroupCommit[str, str] = GroupCommit(writes, key=lambda item: item)
    futures = [commits.enqueue(item) for item in ("a", "b", "c")]
    await writes.until_started(1)
    assert writes.started == [["a", "b", "c"]]
    writes.finish(0)
    assert [await f for f in futures] == ["A", "B", "C"]
    assert commits.batches == 1
