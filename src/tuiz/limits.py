"""Per-client-address abuse limits: PIN lookups, joins and game creation.

Measured before these limits (issue 11): one client looked up 384-471 PINs a second and found
25 live games in 20 s, and created 200-300 games a second (all 900,000 PINs gone in about an
hour). A classroom, though, is hundreds of phones behind one NAT address joining within a
minute. So the limits are per address, generous for lookups that find a game and joins, and
tight only for lookups that find nothing (what a scanner mostly does; a mistyped PIN now and
then is far below it). A refusal is `RATE_LIMITED` (HTTP 429).

In one process the buckets are in memory. With Redis (several processes) every process asks
the same buckets there (`cluster/limits.py`), so an address gets one budget whichever process
it reaches; while Redis does not answer, each process's own buckets decide (up to N budgets for
N processes, which still cuts a scan by orders of magnitude). Memory is bounded: an address
whose bucket has refilled carries no information and is dropped first, and past `max_keys` the
least recently seen addresses go.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network
from typing import Protocol, TypeVar

from tuiz.config import Settings
from tuiz.errors import ErrorCode, TuizError
from tuiz.realtime.ratelimit import TokenBucket

T = TypeVar("T")

MAX_KEYS = 50_000
"""Addresses remembered per limit (a bucket is ~200 bytes: at most ~10 MB per limit)."""


def limit_key(address: str | None) -> str:
    """What one client is for the limits: its IPv4 address, or its IPv6 /64 (a single host
    usually holds a whole /64, so counting addresses would let it rotate past any limit)."""
    if not address:
        return "?"
    try:
        ip = ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ip_network(f"{ip}/64", strict=False))
    return str(ip)


class KeyedBuckets:
    """One `TokenBucket` per key, `per_minute` on average and bursts up to `burst`.

    `per_minute == 0` turns the limit off. Least recently used keys come first, so idle
    buckets (full again: nothing to remember) are dropped from the front on each insert.
    """

    def __init__(
        self,
        per_minute: float,
        burst: float,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def _idle(self, bucket: TokenBucket, now: float) -> bool:
        if bucket.updated is None:
            return True
        owed = max(self.burst - bucket.tokens, bucket.strikes)  # tokens go below 0 as a debt
        return now - bucket.updated >= owed / self.rate

    def _bucket(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is not None:
            self._buckets.move_to_end(key)
            return bucket
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if len(self._buckets) < self.max_keys and not self._idle(oldest, now):
                break
            self._buckets.popitem(last=False)
        bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket

    def take(self, key: str) -> bool:
        """Spend one token of `key`'s bucket; False when it is empty (refuse)."""
        if not self.enabled:
            return True
        now = self.clock()
        return self._bucket(key, now).take(now)

    def has(self, key: str) -> bool:
        """Whether `key` has a token left, without spending it."""
        if not self.enabled:
            return True
        bucket = self._buckets.get(key)
        if bucket is None or bucket.updated is None:
            return True
        elapsed = max(0.0, self.clock() - bucket.updated)
        return min(self.burst, bucket.tokens + elapsed * self.rate) >= 1.0

    def charge(self, key: str) -> None:
        """Count one event after the fact, even past an empty bucket: what was let through
        concurrently becomes a debt that refilling pays back before anything passes again."""
        if not self.enabled:
            return
        now = self.clock()
        bucket = self._bucket(key, now)
        if not bucket.take(now):
            bucket.tokens -= 1.0


class Shared(Protocol):
    """Buckets every process shares (Redis): a verdict, or None when there is none now."""

    async def decide(
        self, name: str, key: str, per_second: float, burst: float, mode: str
    ) -> bool | None: ...


class SharedWindows(Protocol):
    """Sliding windows every process shares (`cluster/limits.SharedBuckets`)."""

    async def window(self, key: str, limit: int, window_s: float, add: str) -> float | None: ...

    async def forget(self, key: str) -> None: ...


class Limit:
    """One limit: the shared buckets when there are some and they answer, else this
    process's own (`KeyedBuckets`: take, has, charge, as there)."""

    def __init__(self, name: str, per_minute: float, burst: float) -> None:
        self.name = name
        self.local = KeyedBuckets(per_minute, burst)
        self.shared: Shared | None = None

    async def _decide(self, key: str, mode: str) -> bool | None:
        if self.shared is None:
            return None
        return await self.shared.decide(self.name, key, self.local.rate, self.local.burst, mode)

    async def take(self, key: str) -> bool:
        if not self.local.enabled:
            return True
        verdict = await self._decide(key, "take")
        return self.local.take(key) if verdict is None else verdict

    async def has(self, key: str) -> bool:
        if not self.local.enabled:
            return True
        verdict = await self._decide(key, "peek")
        return self.local.has(key) if verdict is None else verdict

    async def charge(self, key: str) -> None:
        if self.local.enabled and await self._decide(key, "charge") is None:
            self.local.charge(key)


def _refused(what: str) -> TuizError:
    return TuizError(ErrorCode.RATE_LIMITED, f"too many {what} from your address; slow down")


@dataclass
class PinLookup:
    """One PIN lookup let through; a lookup that finds no game is charged to the address.

    Charged after the lookup, not reserved before it: a class of 50 phones joining in the
    same instant must not be refused because 50 lookups were in flight at once. Misses that
    a scanner gets through concurrently become a debt (the bucket goes below zero), so over
    time it still gets no more than the refill rate.
    """

    limits: AbuseLimits
    key: str

    async def __call__(self, find: Callable[[str], Awaitable[T | None]], pin: str) -> T | None:
        found = await find(pin)
        if found is None:
            await self.limits.pin_misses.charge(self.key)
        return found


class AbuseLimits:
    """The per-address limits, from settings (`TUIZ_*_LIMIT_*`)."""

    def __init__(self, settings: Settings) -> None:
        s = settings
        self.settings = settings
        self.pin_lookups = Limit("pin", s.pin_lookup_limit_per_min, s.pin_lookup_limit_burst)
        self.pin_misses = Limit("miss", s.pin_miss_limit_per_min, s.pin_miss_limit_burst)
        self.joins = Limit("join", s.join_limit_per_min, s.join_limit_burst)
        self.creations = Limit("create", s.create_limit_per_min, s.create_limit_burst)
        # spreadsheet conversions (anyone may run them, each parses up to 1 MB): same rate
        self.conversions = Limit("sheet", s.create_limit_per_min, s.create_limit_burst)

    def share(self, shared: Shared) -> None:
        """Decide every limit in `shared` buckets from now on (one budget per address for
        every process), falling back to this process's own when they do not answer."""
        limits = (self.pin_lookups, self.pin_misses, self.joins, self.creations, self.conversions)
        for limit in limits:
            limit.shared = shared

    async def pin_lookup(self, address: str | None) -> PinLookup:
        """Let a PIN lookup through, or RATE_LIMITED. An address out of failed lookups is
        refused before the lookup, so a refusal never tells whether the PIN exists; run the
        lookup through the returned `PinLookup`."""
        key = limit_key(address)
        if not await self.pin_misses.has(key):
            raise _refused("lookups of unknown PINs")
        if not await self.pin_lookups.take(key):
            raise _refused("PIN lookups")
        return PinLookup(self, key)

    async def join(self, address: str | None) -> None:
        if not await self.joins.take(limit_key(address)):
            raise _refused("joins")

    async def create_game(self, address: str | None) -> None:
        if not await self.creations.take(limit_key(address)):
            raise _refused("new games")

    async def convert_sheet(self, address: str | None) -> None:
        if not await self.conversions.take(limit_key(address)):
            raise _refused("spreadsheet conversions")
