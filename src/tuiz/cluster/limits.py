"""The abuse and sign-in limits of every process in one budget per client, kept in Redis.

Per process (`tuiz.limits`), an address behind a round-robin balancer gets N budgets: a PIN
scanner spreading its lookups over three processes looked up three times as many PINs. Here
each limit and address is one Redis key holding a GCRA "theoretical arrival time" (the token
bucket's state in one number), read and moved by a Lua script on Redis's own clock, so every
process sees the same bucket and no two processes' clocks need agree.

Sign-in limits are sliding windows (`accounts.LoginThrottle`): here a sorted set of attempt
times per account or address, trimmed and counted by a script on Redis's clock.

Redis away or slow: the process's own buckets decide (its own budget, as without Redis) and
Redis is not asked again for a second, so no request waits on a dead link more than once.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tuiz.logs import get_logger, log_outage

log = get_logger(__name__)

ANSWER_TIMEOUT_S = 0.25
"""How long a request waits for Redis's verdict before its process's own buckets decide."""
RETRY_AFTER_S = 1.0
"""After Redis failed to answer, how long the process decides alone before asking again."""

# KEYS[1]: the bucket. ARGV: milliseconds per token, burst, mode (take | peek | charge).
# take: spend a token if there is one; peek: is there one; charge: spend one even if there is
# none (a debt, as `KeyedBuckets.charge`). Returns 1 when a token was (or is) there.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed = (tat - now) <= tolerance
if ARGV[3] == 'peek' then
  if allowed then return 1 end
  return 0
end
if allowed or ARGV[3] == 'charge' then
  tat = tat + interval
  redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now) + 1000)
end
if allowed then return 1 end
return 0
"""


# KEYS[1]: the window. ARGV: window in ms, limit, add (1: record this attempt if allowed, 2:
# record it whatever the count, 0: only look), a unique member. Returns 0 when under the
# limit, else the milliseconds until the oldest attempt leaves the window.
_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local wait = 0
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  wait = math.max(1, tonumber(oldest[2]) + window - now)
end
if ARGV[3] == '2' or (ARGV[3] == '1' and wait == 0) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
end
return wait
"""


class SharedBuckets:
    """`tuiz.limits.Shared` on Redis: one GCRA key per limit and address."""

    def __init__(self, url: str) -> None:
        self.redis = aioredis.Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=ANSWER_TIMEOUT_S,
            socket_timeout=ANSWER_TIMEOUT_S,
        )
        self._script: Any = self.redis.register_script(_GCRA)
        self._window: Any = self.redis.register_script(_WINDOW)
        self._quiet_until = 0.0
        self.fallbacks = 0  # decisions taken by a process alone because Redis did not answer

    async def _ask(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """`call`'s result, or None when Redis cannot answer now (the caller decides alone,
        and Redis is left alone for RETRY_AFTER_S)."""
        if time.monotonic() < self._quiet_until:
            self.fallbacks += 1
            return None
        try:
            return await call()
        except Exception as exc:  # down, refused, timed out
            self._quiet_until = time.monotonic() + RETRY_AFTER_S
            self.fallbacks += 1
            log_outage(log, "shared_limits_unavailable", exc)
            return None

    async def decide(
        self, name: str, key: str, per_second: float, burst: float, mode: str
    ) -> bool | None:
        """Redis's verdict, or None when it cannot answer now (the caller decides alone)."""
        args = [max(1, math.ceil(1000 / per_second)), burst, mode]
        key = f"tuiz:limit:{name}:{key}"
        verdict = await self._ask(lambda: self._script(keys=[key], args=args))
        return None if verdict is None else bool(verdict)

    async def window(self, key: str, limit: int, window_s: float, add: str) -> float | None:
        """A sliding window of attempts (`add`: "1" record if under the limit, "2" record,
        "0" look): seconds until there is room (0: there is), None when Redis cannot say."""
        args = [math.ceil(window_s * 1000), limit, add, secrets.token_hex(8)]
        key = f"tuiz:window:{key}"
        wait = await self._ask(lambda: self._window(keys=[key], args=args))
        return None if wait is None else int(wait) / 1000

    async def forget(self, key: str) -> None:
        """Empty a window (a success clears an account's failures); Redis away: nothing."""
        await self._ask(lambda: self.redis.delete(f"tuiz:window:{key}"))

    async def close(self) -> None:
        await self.redis.aclose()
