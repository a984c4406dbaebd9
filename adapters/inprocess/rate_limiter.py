"""Rate limits held in this process: right for one node (the embedded default)."""

from __future__ import annotations

import time
from collections.abc import Callable

from application.ports.limits import RateLimiter
from domain.rate_limit import RateDecision, RateLimit, gcra

MAX_BUCKETS = 100_000  # beyond this, buckets that are full again are dropped


class InProcessRateLimiter(RateLimiter):
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._tats: dict[str, float] = {}

    async def hit(self, bucket: str, rate: RateLimit, cost: int = 1) -> RateDecision:
        now = self._now()
        decision, tat = gcra(self._tats.get(bucket), now, rate, cost)
        if tat is not None:
            if len(self._tats) >= MAX_BUCKETS:
                self._tats = {b: t for b, t in self._tats.items() if t > now}
            self._tats[bucket] = tat
        return decision

    async def check(self) -> None:
        return None
