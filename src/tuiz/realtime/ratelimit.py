"""Per-connection token bucket: a flood gets RATE_LIMITED, a sustained flood gets disconnected."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """`rate` events per second on average, bursts up to `burst`; time is passed in, not read.

    Refusals are counted as `strikes` that drain at the same rate as tokens refill, so a
    client slightly over the rate stays near zero while a flood climbs quickly.
    """

    rate: float
    burst: float
    tokens: float = field(init=False)
    strikes: float = 0.0
    updated: float | None = None

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self, now: float) -> bool:
        """Spend one token if there is one; otherwise record a strike."""
        if self.updated is not None:
            elapsed = max(0.0, now - self.updated)
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.strikes = max(0.0, self.strikes - elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.strikes += 1.0
        return False
