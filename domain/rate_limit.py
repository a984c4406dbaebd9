"""Rate limits: how many requests a bucket allows per period, decided by GCRA.

GCRA (the generic cell rate algorithm) keeps one number per bucket, the theoretical
arrival time (TAT) of the next request. A bucket allows `limit` requests at once and
then one more every period/limit; it is the same rule as a token bucket refilled
continuously, with no window edges to game. The in-process limiter runs this function;
the Redis limiter runs the same steps in a Lua script, so both decide alike.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta

from domain.errors import FieldProblem, ValidationFailed

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d{1,9})\s*/\s*(second|minute|hour|day)s?\s*$")
EPSILON = 1e-9  # seconds
RATE_RULE = "N/second, N/minute, N/hour or N/day, with N a positive whole number"


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    period: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period <= timedelta(0):
            raise ValueError("a rate limit allows at least 1 request per positive period")

    @classmethod
    def parse(cls, text: str, field: str = "rate_limit") -> RateLimit:
        match = _RATE.match(text)
        if match is None or int(match.group(1)) < 1:
            raise ValidationFailed([FieldProblem(field, f"must look like {RATE_RULE} (got {text!r})")])
        return cls(int(match.group(1)), timedelta(seconds=PERIODS[match.group(2)]))

    def __str__(self) -> str:
        seconds = self.period.total_seconds()
        unit = next((name for name, length in PERIODS.items() if length == seconds), None)
        return f"{self.limit}/{unit}" if unit else f"{self.limit}/{seconds:g}s"


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the bucket is full again
    retry_after: float  # seconds until a refused request would be allowed; 0 when allowed


def gcra(tat: float | None, now: float, rate: RateLimit, cost: int = 1) -> tuple[RateDecision, float | None]:
    """Decide a request that counts `cost` (a batch of messages counts each) at `now`
    (seconds); return the decision and the bucket's new TAT (None when refused: a refusal
    leaves the bucket as it was). A cost above the limit is never allowed."""
    period = rate.period.total_seconds()
    interval = period / rate.limit
    current = max(tat if tat is not None else now, now)
    new_tat = current + interval * cost
    allow_at = new_tat - period
    if allow_at - now > EPSILON:  # a float tolerance: now + interval - period is not exactly now
        return RateDecision(False, rate.limit, 0, current - now, allow_at - now), None
    remaining = math.floor((period - (new_tat - now)) / interval + 1e-9)
    return RateDecision(True, rate.limit, max(remaining, 0), new_tat - now, 0.0), new_tat
