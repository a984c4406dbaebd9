"""Every request gets an answer within its deadline.

Hypercorn closes a connection that has sent nothing for MEMORY_HTTP_READ_TIMEOUT_SECONDS,
also while the app is still working out the answer to a complete request: a slow search
or a long `?wait=true` write was cut off with no answer, no log line and no metric,
although a write was stored (and a retry without a key stored it twice). This middleware
answers any request still unanswered after `seconds` (less than the read timeout; the
settings refuse any other order) with 504 `deadline_exceeded`, logs it and counts it.

The work itself goes on to its end: a write that was accepted is stored, and the
admission slot it holds is held until then, so the bound on work in flight still holds.
Its late answer is dropped, and so is the disconnect the server reports once our answer
has ended the exchange (Quart cancels a request's work when it hears one).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection

from hypercorn.typing import ASGIReceiveCallable as Receive
from hypercorn.typing import ASGIReceiveEvent, ASGISendEvent, HTTPResponseBodyEvent, HTTPResponseStartEvent, Scope
from hypercorn.typing import ASGISendCallable as Send

logger = logging.getLogger(__name__)

Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


def deadline_problem(seconds: float) -> bytes:
    return json.dumps(
        {
            "type": "urn:memorymesh:problem:deadline_exceeded",
            "title": "deadline exceeded",
            "status": 504,
            "code": "deadline_exceeded",
            "detail": f"no answer within {seconds:g} s (MEMORY_HTTP_REQUEST_DEADLINE_SECONDS); the work goes on "
            "and a write may still be stored: retry a write with the same client_message_id",
        }
    ).encode()


class Deadline:
    """ASGI middleware: HTTP requests outside `exempt` are answered within `seconds`."""

    def __init__(self, app: Asgi, seconds: float, exempt: Collection[str], on_expired: Callable[[], None]) -> None:
        self.app = app
        self.seconds = seconds
        self.exempt = frozenset(exempt)
        self.on_expired = on_expired
        self._body = deadline_problem(seconds)
        self._late: set[asyncio.Future[None]] = set()  # work answered by the deadline, still going on

    async def finish_late_work(self, bound_seconds: float) -> None:
        """Let the work already answered by the deadline end (a write it carries is stored)
        before the services it uses stop: at shutdown, it would otherwise fail halfway."""
        if self._late:
            await asyncio.wait(set(self._late), timeout=bound_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        started = late = False

        async def answer(event: ASGISendEvent) -> None:
            nonlocal started
            if late:
                return  # the deadline already answered this request
            if event["type"] == "http.response.start":
                started = True
            await send(event)

        async def listen() -> ASGIReceiveEvent:
            event = await receive()
            while late and event["type"] == "http.disconnect":
                # Our answer ended the exchange; Quart would cancel the work on hearing it.
                await asyncio.Event().wait()
            return event

        work = asyncio.ensure_future(self.app(scope, listen, answer))
        try:
            done, _ = await asyncio.wait({work}, timeout=self.seconds)
            if not done and not started:
                late = True
                self._late.add(work)
                work.add_done_callback(self._ended)
                self.on_expired()
                logger.warning(
                    "request past its deadline",
                    extra={"method": scope["method"], "path": scope["path"], "deadline_seconds": self.seconds},
                )
                await self._expired(send)
                # The exchange is over; the work goes on apart from it, so that a server stopping
                # neither cancels it halfway nor waits on its connection (app.py lets it end first).
                return
            await work
        except BaseException:
            work.cancel()  # the server is stopping, or the client went away
            raise

    def _ended(self, work: asyncio.Future[None]) -> None:
        self._late.discard(work)
        if not work.cancelled() and (error := work.exception()) is not None:  # nobody else awaits it
            logger.error("late work failed", exc_info=error)

    async def _expired(self, send: Send) -> None:
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(self._body)).encode())]
        await send(HTTPResponseStartEvent(type="http.response.start", status=504, headers=headers, trailers=False))
        await send(HTTPResponseBodyEvent(type="http.response.body", body=self._body, more_body=False))
