"""When a failed embedding is tried again, and when it is given up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: base, 2 x base, 4 x base, ... capped at max_delay, for max_attempts in all."""

    max_attempts: int = 5
    base_delay: timedelta = timedelta(seconds=2)
    max_delay: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay <= timedelta(0) or self.max_delay < self.base_delay:
            raise ValueError("delays must be positive, and max_delay at least base_delay")

    def delay_after(self, attempts: int) -> timedelta | None:
        """The wait before the next try after `attempts` failed tries; None once they are used up."""
        if attempts >= self.max_attempts:
            return None
        exponent = max(attempts - 1, 0)
        if exponent >= 32:  # 2**32 base delays exceed any sensible cap
            return self.max_delay
        delay: timedelta = self.base_delay * (2**exponent)
        return min(delay, self.max_delay)
