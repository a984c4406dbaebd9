"""When to try a request again, and after how long: the rule both clients follow.

Exponential backoff with full jitter (the AWS Architecture Blog's "Exponential Backoff And
Jitter"): before try n+1, sleep a uniform random time in [0, min(cap, base * 2**n)], so clients
refused together do not come back together. A `Retry-After` the service sent is a floor: never
sooner than it asked, and the jitter goes on top of it (a floor that replaced the jitter would
bring every client refused with the same Retry-After back at the same instant). Bounded
twice: at most `attempts` tries, and no sleep that would end past `total_seconds` from the
first try (the last error is raised instead).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from memorymesh_client.errors import Unreachable, error_from, retry_after_seconds

# Statuses that pass with time. 504 `deadline_exceeded`: the work may have gone on, so only a
# call that is safe to repeat (read-only, idempotent, or carrying its idempotency key) repeats it.
RETRIED_STATUSES = frozenset({429, 503, 504})
# Refusals the service sends before it does any of the work: safe to repeat for every call.
REFUSED_BEFORE_WORK = frozenset({429})
# Transport errors that mean the request never reached the service.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class Retries:
    """The retry bounds. `Retries(attempts=1)` never retries."""

    attempts: int = 5
    base_seconds: float = 0.5
    cap_seconds: float = 20.0
    total_seconds: float = 60.0
    uniform: Callable[[float, float], float] = field(default=random.uniform, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_seconds < 0 or self.cap_seconds < 0 or self.total_seconds < 0:
            raise ValueError("base_seconds, cap_seconds and total_seconds must be at least 0")

    def backoff(self, attempt: int) -> float:
        """Full jitter: a uniform time in [0, min(cap, base * 2**attempt)]; `attempt` counts from 0."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** min(attempt, 62))
        return self.uniform(0.0, ceiling)

    def delay(self, attempt: int, elapsed: float, retry_after: float | None) -> float | None:
        """How long to sleep before the next try, or None to give up: after `attempt` + 1 tries
        that took `elapsed` seconds, with the `Retry-After` the last answer carried."""
        if attempt + 1 >= self.attempts:
            return None
        sleep = (retry_after or 0.0) + self.backoff(attempt)
        if elapsed + sleep > self.total_seconds:
            return None
        return sleep

    def after_response(self, response: httpx.Response, safe: bool, attempt: int, elapsed: float) -> float | None:
        """The sleep before trying again after this refused answer, or None to raise it."""
        status = response.status_code
        if status not in RETRIED_STATUSES or not (safe or status in REFUSED_BEFORE_WORK or shed(response)):
            return None
        return self.delay(attempt, elapsed, retry_after_seconds(response.headers))

    def after_error(self, error: httpx.TransportError, safe: bool, attempt: int, elapsed: float) -> float | None:
        """The sleep before trying again after no answer came, or None to raise it."""
        if not (safe or isinstance(error, NEVER_SENT)):
            return None
        return self.delay(attempt, elapsed, None)


def shed(response: httpx.Response) -> bool:
    """A 503 `overloaded`: the service refused it before reading its body, so nothing was done."""
    if response.status_code != 503:
        return False
    try:
        return bool(response.json().get("code") == "overloaded")
    except (ValueError, AttributeError):
        return False


class Attempts:
    """One call's tries: tells the client, after each failed one, how long to sleep before the
    next, or raises the error to give up. Pure bookkeeping; the client does the I/O and the sleeping."""

    def __init__(self, retries: Retries, safe: bool, clock: Callable[[], float]) -> None:
        self.retries = retries
        self.safe = safe
        self.clock = clock
        self.started = clock()
        self.attempt = 0

    def after_response(self, response: httpx.Response) -> float:
        """The refused `response` (its body read): the sleep before the next try, or its error raised."""
        delay = self.retries.after_response(response, self.safe, self.attempt, self.clock() - self.started)
        if delay is None:
            raise error_from(response)
        self.attempt += 1
        return delay

    def after_error(self, error: httpx.TransportError) -> float:
        """No answer: the sleep before the next try, or `Unreachable` raised."""
        delay = self.retries.after_error(error, self.safe, self.attempt, self.clock() - self.started)
        if delay is None:
            tries = self.attempt + 1
            detail = f"{type(error).__name__}: {error} (after {tries} {'try' if tries == 1 else 'tries'})"
            raise Unreachable(None, "unreachable", detail) from error
        self.attempt += 1
        return delay
