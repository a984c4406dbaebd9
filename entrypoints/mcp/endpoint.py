"""/mcp on the API's own process: MCP over streamable HTTP, next to the REST routes.

An ASGI dispatcher in front of the Quart app (inside load shedding and the deadline, so /mcp
shares their bounds) sends /mcp to the SDK's streamable-HTTP app once the API key (x-api-key,
or Authorization: Bearer) resolves to a Principal; without one it answers 401 as the REST
routes do. The Principal rides in the ASGI scope, where the tools find it.

Stateless: each POST is a whole exchange (JSON answers, no SSE, no session id), so any process
behind a load balancer can answer any call and nothing is kept between calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from hypercorn.typing import ASGIReceiveCallable as Receive
from hypercorn.typing import ASGISendCallable as Send
from hypercorn.typing import HTTPResponseBodyEvent, HTTPResponseStartEvent, HTTPScope, Scope
from mcp.server.transport_security import TransportSecuritySettings

from domain.access import Principal
from domain.errors import DomainError
from entrypoints.http.errors import STATUS_BY_CODE, problem_headers
from entrypoints.mcp import operations
from entrypoints.mcp.tools import PRINCIPAL, build_server

Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]
PATHS = frozenset({"/mcp", "/mcp/"})


def presented_key(scope: Scope) -> str | None:
    """The API key as sent: the x-api-key header, or an Authorization: Bearer token."""
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())  # type: ignore[assignment]
    bearer = None
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1")
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
    return bearer


class McpEndpoint:
    """ASGI: /mcp to the MCP app for a caller with a valid key; everything else to `app`."""

    def __init__(self, app: Asgi, mcp_app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.mcp_app = mcp_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in PATHS:
            await self.app(scope, receive, send)
            return
        started, status, principal = time.perf_counter(), 500, None

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            principal = await self.answer(scope, receive, sending)
        finally:  # what a REST request leaves behind: the HTTP metrics and one log line
            operations.observe(scope["method"], status, time.perf_counter() - started, principal)

    async def answer(self, scope: HTTPScope, receive: Receive, send: Send) -> Principal | None:
        """Answer a /mcp request; the caller's Principal, once the key resolved."""
        if scope["method"] != "POST":
            # Stateless with JSON answers: no stream to GET (one held open would keep a slot of
            # load shedding for the whole read timeout) and no session to DELETE.
            detail = "MCP here is stateless: POST each JSON-RPC message to /mcp"
            await problem(send, 405, "method_not_allowed", detail, {"allow": "POST"})
            return None
        key = presented_key(scope)
        if not key:
            await problem(send, 401, "unauthorized", "send your API key in the x-api-key header or as a Bearer token")
            return None
        principal = None
        try:
            principal = await operations.resolve_key(key)
            if principal is not None:
                await operations.limit_key(principal)  # every request, as REST counts them: not only tool calls
        except DomainError as error:  # the key store cannot answer, or the key is over its rate limit
            await problem(send, STATUS_BY_CODE.get(error.code, 503), error.code, error.detail, problem_headers(error))
            return principal
        if principal is None:
            await problem(send, 401, "unauthorized", "the API key is not valid")
            return None
        await self.mcp_app({**cast(dict[str, Any], scope), PRINCIPAL: principal}, receive, send)
        return principal


async def problem(send: Send, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(
        {
            "type": f"urn:memorymesh:problem:{code}",
            "title": code.replace("_", " "),
            "status": status,
            "code": code,
            "detail": detail,
        }
    ).encode()
    sent = {"retry-after": "5"} if status == 503 else {}
    sent |= {name.lower(): value for name, value in (headers or {}).items()}
    fields = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    fields += [(name.encode(), value.encode()) for name, value in sent.items()]
    await send(HTTPResponseStartEvent(type="http.response.start", status=status, headers=fields, trailers=False))
    await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))


Running = Callable[[], AbstractAsyncContextManager[None]]


def mount(app: Asgi, version: str, max_body_bytes: int) -> tuple[McpEndpoint, Running]:
    """`app` with /mcp in front of it, and what runs the MCP side while the app serves."""
    server = build_server(version)
    mcp_app = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        max_request_body_size=max_body_bytes,
        # The API key is what keeps strangers out; the SDK's Host allow-list (localhost only by
        # default) would refuse every call that comes through a load balancer or another name.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return McpEndpoint(app, mcp_app), server.session_manager.run
