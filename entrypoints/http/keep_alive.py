"""Keep-alive that a client can trust after an early answer.

An answer given before the request's body has all arrived (a 401 for a missing key, a 429, a
503 from load shedding or an unreachable rate limiter) leaves the rest of the body on the
connection: the server cannot read the next request from it, and closes it after the answer.
Without saying so, a keep-alive client sends its next request on that connection and gets
"server disconnected without sending a response" (httpx: RemoteProtocolError), about one time in
four here (tests/e2e/test_keep_alive.py). Such answers carry `Connection: close`, so the client
opens a new connection instead. The body is not read to keep the connection: a refused request
may be 16 MB, sent slowly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import cast

from hypercorn.typing import ASGIReceiveCallable as Receive
from hypercorn.typing import ASGIReceiveEvent, ASGISendEvent, HTTPResponseStartEvent, Scope
from hypercorn.typing import ASGISendCallable as Send

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def has_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        name = name.lower()
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class CloseAfterUnreadBody:
    """ASGI middleware: `Connection: close` on an HTTP/1.x answer that starts before its
    request's body was received whole."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["http_version"] not in ("1.0", "1.1") or not has_body(scope["headers"]):
            await self.app(scope, receive, send)
            return
        received = False

        async def tracked_receive() -> ASGIReceiveEvent:
            nonlocal received
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                received = True
            return message

        async def marked_send(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.start" and not received:
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"connection"]
                message = cast(HTTPResponseStartEvent, {**message, "headers": [*headers, (b"connection", b"close")]})
            await send(message)

        await self.app(scope, tracked_receive, marked_send)
