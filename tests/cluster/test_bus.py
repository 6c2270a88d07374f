"""`ClusterBus` between two ends on one real Redis: batched requests keep their order and their
typed errors, deliveries reach the other processes only, in order, and a dead owner is seen."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tuiz.cluster.bus import ClusterBus, OwnerGone
from tuiz.errors import ErrorCode, TuizError


async def _started(url: str, owner: str, **options: Any) -> ClusterBus:
    bus = ClusterBus(url, owner, **options)
    bus.start()
    async with asyncio.timeout(10):
        await bus.subscribed.wait()
    return bus


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[ClusterBus, ClusterBus]]:
    tag = uuid.uuid4().hex[:8]
    a = await _started(redis_url, f"a-{tag}")
    b = await _started(redis_url, f"b-{tag}")
    yield a, b
    await asyncio.gather(a.close(), b.close())


async def test_many_requests_in_one_turn_keep_order_and_errors(
    pair: tuple[ClusterBus, ClusterBus],
) -> None:
    a, b = pair
    seen: list[int] = []

    async def handle(body: dict[str, Any]) -> Any:
        seen.append(body["n"])
        if body["n"] % 7 == 0:
            raise TuizError(ErrorCode.TOO_LATE, "closed", n=body["n"])
        return {"twice": body["n"] * 2}

    b.handlers["echo"] = handle
    results = await asyncio.gather(
        *(a.request(b.owner, "echo", {"n": n}) for n in range(1, 301)), return_exceptions=True
    )
    assert seen == list(range(1, 301))  # started in the order sent, though sent in batches
    for n, result in enumerate(results, start=1):
        if n % 7 == 0:
            assert isinstance(result, TuizError) and result.code is ErrorCode.TOO_LATE
            assert result.details == {"n": n} and str(result) == "closed"
        else:
            assert result == {"twice": n * 2}


async def test_deliveries_reach_the_others_in_order_not_the_sender(
    pair: tuple[ClusterBus, ClusterBus],
) -> None:
    a, b = pair
    got: dict[str, list[int]] = {"a": [], "b": []}
    all_in, marker = asyncio.Event(), asyncio.Event()

    def on_b(body: dict[str, Any]) -> None:
        got["b"].append(body["n"])
        if len(got["b"]) == 1000:
            all_in.set()

    a.inline["item"] = lambda body: got["a"].append(body["n"])
    a.inline["marker"] = lambda _body: marker.set()
    b.inline["item"] = on_b
    for n in range(1000):
        a.deliver("item", {"n": n})
    async with asyncio.timeout(10):
        await all_in.wait()
        b.deliver("marker", {})  # reaches `a` after anything `a` published before
        await marker.wait()
    assert got["b"] == list(range(1000))
    assert got["a"] == []


async def test_an_owner_that_stops_listening_mid_request_is_gone(redis_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    a = await _started(redis_url, f"a-{tag}", timeout=30)
    b = await _started(redis_url, f"b-{tag}")
    received = asyncio.Event()

    async def stuck(_body: dict[str, Any]) -> Any:
        received.set()
        await asyncio.Event().wait()

    b.handlers["stuck"] = stuck
    try:
        asking = asyncio.ensure_future(a.request(b.owner, "stuck", {}))
        await received.wait()
        await b.close()  # the owner dies holding the request
        with pytest.raises(OwnerGone) as gone:
            async with asyncio.timeout(10):  # well before the 30 s forward timeout
                await asking
        assert gone.value.delivered and gone.value.code is ErrorCode.UNAVAILABLE
        with pytest.raises(OwnerGone) as nobody:
            await a.request(b.owner, "stuck", {})
        assert not nobody.value.delivered
    finally:
        await a.close()
