from __future__ import annotations

from datetime import datetime

from application.ports.clock import Clock


class FixedClock(Clock):
    """A clock that says what it is told: for tests."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current
