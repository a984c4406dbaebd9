"""`memorymesh mcp`: an MCP server on stdio (for Claude Desktop and other local clients) that
forwards to a running memorymesh service's /mcp over streamable HTTP.

A proxy, not a second server in process: the tools' names, descriptions and schemas are listed
from the service, so they are defined once (tools.py) and a client on stdio sees exactly what a
client on HTTP sees; the key, tenant rules, rate limits and load shedding are the service's;
and this process needs no database, model or settings, only MEMORY_URL and MEMORY_API_KEY.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import (
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
)

from entrypoints.mcp import USER_HEADER

logger = logging.getLogger(__name__)


class ServiceUnreachable(Exception):
    """The service did not answer (down, or a wrong URL)."""


class ServiceRefused(ServiceUnreachable):
    """The service answered, turning the call away at its door: the problem's `code: detail`."""


def endpoint(url: str) -> str:
    """The /mcp address of a service given by its base URL (or by its /mcp address)."""
    url = url.rstrip("/")
    return url if url.endswith("/mcp") else f"{url}/mcp"


def reason(error: BaseException) -> str:
    """What went wrong, in one line: the first error inside the transport's task groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


class Remote:
    """The service's /mcp. A connection per exchange: the service is stateless, and a transport
    error (the service restarting) then ends one call, never the stdio session."""

    def __init__(self, url: str, key: str, user_id: str | None = None) -> None:
        self.url = endpoint(url)
        self.headers = {"x-api-key": key} | ({USER_HEADER: user_id} if user_id else {})

    @asynccontextmanager
    async def session(self) -> AsyncIterator[ClientSession]:
        try:
            async with (
                create_mcp_http_client(headers=self.headers) as http,
                streamable_http_client(self.url, http_client=http) as (read, write),
                ClientSession(read, write) as remote,
            ):
                await remote.initialize()
                yield remote
        except Exception as error:  # a transport's failure arrives wrapped in its task groups
            refused = await self.refusal()
            if refused is not None:
                raise ServiceRefused(refused) from error
            raise ServiceUnreachable(f"no answer from {self.url}: {reason(error)}") from error

    async def refusal(self) -> str | None:
        """Why the service turns this connection away at its door, if it does (a key it does not
        know, a key over its rate limit, an overloaded process): its problem's code and detail.
        The SDK client reports each of these as a bare error response."""
        try:
            async with httpx.AsyncClient(headers=self.headers, timeout=10) as http:
                response = await http.post(self.url, json={})
            if response.status_code not in (401, 429, 503):
                return None
            problem = response.json()
            return f"{problem['code']}: {problem['detail']}"
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    async def list_tools(self, params: PaginatedRequestParams | None = None) -> ListToolsResult:
        async with self.session() as remote:
            return await remote.list_tools(params=params)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        async with self.session() as remote:
            result = await remote.call_tool(name, arguments)
        if not isinstance(result, CallToolResult):  # an input request: none of our tools asks one
            return CallToolResult(content=[TextContent(text="unsupported: the service asked for input")], is_error=True)
        return result


def forwarding(remote: Remote, version: str) -> Server[Any]:
    """A stdio-side server whose tools are the remote ones, each call forwarded as it came."""

    async def list_tools(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListToolsResult:
        return await remote.list_tools(params)

    async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        try:
            return await remote.call_tool(params.name, params.arguments or {})
        except ServiceRefused as error:  # e.g. unauthorized: the key was revoked
            logger.warning("call refused: %s", error)
            return CallToolResult(content=[TextContent(text=str(error))], is_error=True)
        except ServiceUnreachable as error:
            # The service shed the call (503), is restarting, or cannot be reached: the model reads
            # why, and the stdio session goes on.
            logger.warning("call not forwarded: %s", error)
            return CallToolResult(content=[TextContent(text=f"unavailable: {error}; retry later")], is_error=True)

    return Server("memorymesh", version=version, on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(url: str, key: str, version: str, user_id: str | None = None) -> None:
    """Serve MCP on stdin/stdout until the client closes it, forwarding to the service at `url`
    (bound to `user_id`, when given). Refuses to start (ServiceUnreachable) when the service does
    not answer with this key."""
    remote = Remote(url, key, user_id)
    await remote.list_tools()
    server = forwarding(remote, version)
    async with stdio_server() as (stdin, stdout):
        await server.run(stdin, stdout, server.create_initialization_options())
