"""Load shedding: a bound on the requests one API process works on at once.

Past its capacity a process that takes every request answers all of them late: they queue
in the event loop, each one's share of the CPU shrinks, and latency grows until clients
time out (bench/results/soak.md, minute 9.5). This middleware lets at most `limit` requests
in at once. A request that finds them all busy waits up to `wait_seconds` for one to
finish; if none does, it is answered at once with 503 and Retry-After, before any of its
body is read, so the client can back off or try another process. At most `limit` requests
wait: past that the newcomer is refused without waiting. Slots and places in the waiting
room are shared fairly between API keys (see Admission), so one caller's flood sheds its
own requests first. (A client that hangs up while
waiting keeps its place: Hypercorn does not cancel the request's task.)

Probes and scrapes are never queued or refused: an overloaded process is alive, and its
metrics are how an operator sees the overload.

No library: Hypercorn has no such bound (uvicorn's `limit_concurrency` is one, without the
wait), and the ASGI rate limiters count requests per client over time, not work in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field

from hypercorn.typing import ASGIReceiveCallable as Receive
from hypercorn.typing import ASGISendCallable as Send
from hypercorn.typing import HTTPResponseBodyEvent, HTTPResponseStartEvent, Scope

Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_AFTER_SECONDS = 2
OVERLOADED = json.dumps(
    {
        "type": "urn:memorymesh:problem:overloaded",
        "title": "overloaded",
        "status": 503,
        "code": "overloaded",
        "detail": "this server process is at its limit of requests in flight; retry after the Retry-After seconds",
    }
).encode()


@dataclass(eq=False, slots=True)
class Waiter:
    key: str
    admitted: asyncio.Future[bool]
    since: int = field(default_factory=itertools.count().__next__)  # arrival order


class Admission:
    """At most `limit` in flight, and at most `limit` more waiting, each for `wait_seconds`.

    Fair between callers (requests carrying the same key, the API key): a freed slot goes to
    the waiting caller with the fewest requests in flight, and when the waiting room is full
    a newcomer takes the place of the last waiter of the caller holding the most, if that is
    more than the newcomer's caller would hold. One caller's flood therefore cannot keep the
    others out, yet a caller alone may use every slot.
    """

    def __init__(self, limit: int, wait_seconds: float) -> None:
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.in_flight = 0
        self._running: Counter[str] = Counter()  # in flight, by key
        self._waiting: dict[str, deque[Waiter]] = {}  # by key, oldest first

    @property
    def waiting(self) -> int:
        return sum(len(line) for line in self._waiting.values())

    def held(self, key: str) -> int:
        """What a caller holds: its requests in flight and waiting."""
        return self._running[key] + len(self._waiting.get(key, ()))

    async def enter(self, key: str = "") -> bool:
        """Take a slot (True), or say the request must be shed (False)."""
        if self.in_flight < self.limit and not self._waiting:
            self._admit(key)
            return True
        if self.wait_seconds <= 0 or not self._make_room(key):
            return False
        waiter = Waiter(key, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(key, deque()).append(waiter)
        try:
            async with asyncio.timeout(self.wait_seconds):
                return await waiter.admitted
        except TimeoutError:
            return self._outcome(waiter)  # admitted in the same instant the wait ran out
        except asyncio.CancelledError:
            if self._outcome(waiter):
                self.leave(key)  # handed a slot it will never use
            raise
        finally:
            self._drop(waiter)

    def leave(self, key: str = "") -> None:
        self.in_flight -= 1
        self._running[key] -= 1
        if not self._running[key]:
            del self._running[key]
        self._admit_waiters()

    def _admit(self, key: str) -> None:
        self.in_flight += 1
        self._running[key] += 1

    def _admit_waiters(self) -> None:
        while self.in_flight < self.limit and self._waiting:
            key = min(self._waiting, key=lambda k: (self._running[k], self._waiting[k][0].since))
            waiter = self._waiting[key][0]
            self._drop(waiter)
            self._admit(key)
            waiter.admitted.set_result(True)

    def _make_room(self, key: str) -> bool:
        """Whether a newcomer of `key` may wait: the room has space, or a heavier caller's
        last waiter gives up its place (and is shed)."""
        if self.waiting < self.limit:
            return True
        heaviest = max(self._waiting, key=self.held)
        if self.held(heaviest) <= self.held(key) + 1:
            return False
        waiter = self._waiting[heaviest][-1]
        self._drop(waiter)
        waiter.admitted.set_result(False)
        return True

    def _drop(self, waiter: Waiter) -> None:
        line = self._waiting.get(waiter.key)
        if line is not None and waiter in line:
            line.remove(waiter)
            if not line:
                del self._waiting[waiter.key]

    @staticmethod
    def _outcome(waiter: Waiter) -> bool:
        done = waiter.admitted.done() and not waiter.admitted.cancelled()
        return done and waiter.admitted.result()


class LoadShedding:
    """ASGI middleware: HTTP requests outside `exempt` pass through an Admission."""

    def __init__(
        self,
        app: Asgi,
        admission: Admission,
        exempt: Collection[str],
        on_change: Callable[[int], None],
        on_shed: Callable[[], None],
    ) -> None:
        self.app = app
        self.admission = admission
        self.exempt = frozenset(exempt)
        self.on_change = on_change  # the number in flight, after each change
        self.on_shed = on_shed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        key = caller(scope)
        if not await self.admission.enter(key):
            self.on_shed()
            await shed(send)
            return
        try:
            self.on_change(self.admission.in_flight)
            await self.app(scope, receive, send)
        finally:
            self.admission.leave(key)
            self.on_change(self.admission.in_flight)


def caller(scope: Scope) -> str:
    """Who is asking, for fairness: the API key as sent (checked later, by the app)."""
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())  # type: ignore[assignment]
    bearer = ""
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1")[:256]
        if name == b"authorization":  # /mcp takes the key as a Bearer token too
            bearer = value.decode("latin-1")[:256]
    return bearer


async def shed(send: Send) -> None:
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(OVERLOADED)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    ]
    await send(HTTPResponseStartEvent(type="http.response.start", status=503, headers=headers, trailers=False))
    await send(HTTPResponseBodyEvent(type="http.response.body", body=OVERLOADED, more_body=False))
