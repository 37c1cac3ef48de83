"""Rate limits: a token bucket per caller."""

from __future__ import annotations

import math
import time


class RateLimiter:
    """A token bucket per caller: ``rate_per_minute`` sustained, ``burst`` at once."""

    def __init__(self, rate_per_minute: int, burst: int, *, max_callers: int = 100_000) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = burst
        self.max_callers = max_callers
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, caller: str) -> float:
        """0 if the caller may go ahead now, else the seconds until it may."""
        now = time.monotonic()
        tokens, then = self._buckets.get(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1:
            if len(self._buckets) >= self.max_callers:
                self._buckets.clear()
            self._buckets[caller] = (tokens - 1, now)
            return 0.0
        self._buckets[caller] = (tokens, now)
        return math.ceil((1 - tokens) / self.rate * 10) / 10
