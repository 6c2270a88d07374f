"""Failed credential attempts per client address: guessing the service key or the JWT secret
costs a lockout (429 `RATE_LIMITED`) after `limit` failures within a window.

Counted: a service key or token that does not verify (a wrong key, a forged or malformed
token). Not counted: a token we signed that is refused for another reason (expired, wrong
role), so a classroom behind one NAT address is not locked out by stale sessions. While an
address is locked out, every credential it presents is refused, the right one too; otherwise
guessing would simply go on. Anonymous requests are not affected. IPv6 clients count per /64
(one host usually holds a whole /64). `AuthFailures` counts in this process, its table bounded
(the addresses that failed longest ago are forgotten first); `AuthGate` keeps the count in
Redis when there is one (a sliding window there), so a guesser spreading its attempts over N
processes does not get N allowances, and falls back to the process's own while Redis does not
answer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from ipaddress import IPv6Address, ip_address, ip_network

from tuiz.errors import ErrorCode, TuizError
from tuiz.limits import SharedWindows

LOCKED = "too many failed sign-in attempts from your address; try again later"
UNKNOWN = "?"  # a request without a peer address (never seen over TCP) shares one bucket


def _key(address: str | None) -> str:
    if not address:
        return UNKNOWN
    try:
        ip = ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ip_network(f"{ip}/64", strict=False))
    return str(ip)


class AuthFailures:
    """A fixed window per address, opened by its first failure."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # address -> (opened, failures)

    def check(self, address: str | None) -> None:
        """Refuse (RATE_LIMITED) an address that used up its failures in this window."""
        key = _key(address)
        entry = self._windows.get(key)
        if entry is None:
            return
        opened, failures = entry
        left = opened + self.window_s - self._clock()
        if left <= 0:
            del self._windows[key]
        elif failures >= self.limit:
            raise TuizError(ErrorCode.RATE_LIMITED, LOCKED, retry_after_s=math.ceil(left))

    def failed(self, address: str | None) -> None:
        """Count one failed attempt."""
        key = _key(address)
        now = self._clock()
        entry = self._windows.pop(key, None)
        if entry is None or entry[0] + self.window_s <= now:
            entry = (now, 0)
        self._windows[key] = (entry[0], entry[1] + 1)  # re-inserted: newest last
        if len(self._windows) > self.max_addresses:
            self._forget(now)

    def _forget(self, now: float) -> None:
        for key, (opened, _) in list(self._windows.items()):
            if opened + self.window_s <= now:
                del self._windows[key]
        while len(self._windows) > self.max_addresses:
            del self._windows[next(iter(self._windows))]


class AuthGate:
    """An app's failed-credential limit, shared by REST and Socket.IO: `local`'s limit and
    window counted in `shared` (every process in one count per address) when there is one and
    it answers, else in `local`."""

    def __init__(self, local: AuthFailures, shared: SharedWindows | None = None) -> None:
        self.local = local
        self.shared = shared

    def share(self, shared: SharedWindows) -> None:
        self.shared = shared

    async def check(self, address: str | None) -> None:
        """Refuse (RATE_LIMITED) an address that used up its failures in this window."""
        if self.shared is not None:
            local = self.local
            key = f"auth:{_key(address)}"
            wait = await self.shared.window(key, local.limit, local.window_s, "0")
            if wait is not None:
                if wait:
                    raise TuizError(ErrorCode.RATE_LIMITED, LOCKED, retry_after_s=math.ceil(wait))
                return
        self.local.check(address)

    async def failed(self, address: str | None) -> None:
        """Count one failed attempt."""
        local, shared = self.local, self.shared
        key = f"auth:{_key(address)}"
        if shared is None or await shared.window(key, local.limit, local.window_s, "2") is None:
            local.failed(address)
