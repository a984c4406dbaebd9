"""Load shedding: a bound on the requests one API process works on at once.

Past its capacity a process that takes every request answers all of them late: they queue
in the event loop, each one's share of the CPU shrinks, and latency grows until clients
time out (bench/results/soak.md, minute 9.5). This middleware lets at most `limit` requests
in at once. A request that finds them all busy waits up to `wait_seconds` for one to
finish; if none does, it is answered at once with 503 and Retry-After, before any of its
body is read, so the client can back off or try another process. At most `limit` requests
wait: past that the newcomer is refused without waiting. (A client that hangs up while
waiting keeps its place: Hypercorn does not cancel the request's task.)

Probes and scrapes are never queued or refused: an overloaded process is alive, and its
metrics are how an operator sees the overload.

No library: Hypercorn has no such bound (uvicorn's `limit_concurrency` is one, without the
wait), and the ASGI rate limiters count requests per client over time, not work in flight.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Collection

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


class Admission:
    """At most `limit` in flight, and at most `limit` more waiting, each for `wait_seconds`."""

    def __init__(self, limit: int, wait_seconds: float) -> None:
        self.limit = limit
        self.wait_seconds = wait_seconds
        self._slots = asyncio.Semaphore(limit)
        self._waiting = 0
        self.in_flight = 0

    async def enter(self) -> bool:
        """Take a slot (True), or say the request must be shed (False)."""
        if self._slots.locked():
            if self._waiting >= self.limit or self.wait_seconds <= 0:
                return False
            self._waiting += 1
            try:
                async with asyncio.timeout(self.wait_seconds):
                    await self._slots.acquire()
            except TimeoutError:
                return False
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()  # free: returns at once
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1
        self._slots.release()


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
        if not await self.admission.enter():
            self.on_shed()
            await shed(send)
            return
        try:
            self.on_change(self.admission.in_flight)
            await self.app(scope, receive, send)
        finally:
            self.admission.leave()
            self.on_change(self.admission.in_flight)


async def shed(send: Send) -> None:
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(OVERLOADED)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    ]
    await send(HTTPResponseStartEvent(type="http.response.start", status=503, headers=headers, trailers=False))
    await send(HTTPResponseBodyEvent(type="http.response.body", body=OVERLOADED, more_body=False))
