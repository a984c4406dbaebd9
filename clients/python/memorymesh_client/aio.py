"""`AsyncAsyncMemoryMesh`: the asyncio client, the twin of `AsyncMemoryMesh` (same methods, same
arguments, awaited). Each method builds its call with the function of the same name in
`operations` and sends it, retrying as `Retries` says."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from memorymesh_client import admin
from memorymesh_client import operations as ops
from memorymesh_client.calls import Call
from memorymesh_client.config import DEFAULT_TIMEOUT_SECONDS, base_url, headers
from memorymesh_client.retries import Attempts, Retries
from memorymesh_client.types import Message, Page

P = ParamSpec("P")
R = TypeVar("R")


def sent(build: Callable[P, Call[R]]) -> Callable[Concatenate[AsyncMemoryMesh, P], Coroutine[Any, Any, R]]:
    """The method that sends what `build` makes and answers what it reads."""

    async def method(self: AsyncMemoryMesh, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self.send(build(*args, **kwargs))

    method.__name__, method.__doc__ = build.__name__, build.__doc__
    return method


def paged(build: Callable[P, Call[Page]]) -> Callable[Concatenate[AsyncMemoryMesh, P], AsyncIterator[Message]]:
    """The method that yields every message of a listing, following `next_cursor` page by page."""

    async def method(self: AsyncMemoryMesh, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Message]:
        call = build(*args, **kwargs)
        while True:
            page = await self.send(call)
            for message in page["messages"]:
                yield message
            if page["next_cursor"] is None:
                return
            call = ops.page_of(call, page["next_cursor"])

    method.__doc__ = build.__doc__
    return method


def streamed(build: Callable[P, Call[None]]) -> Callable[Concatenate[AsyncMemoryMesh, P], AsyncIterator[Message]]:
    """The method that yields each message of an NDJSON answer as it arrives."""

    async def method(self: AsyncMemoryMesh, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Message]:
        response = await self.respond(build(*args, **kwargs))
        try:
            async for line in response.aiter_lines():
                if (message := ops.message_line(line)) is not None:
                    yield message
        except httpx.TransportError as error:
            raise ops.cut_short(error) from error
        finally:
            await response.aclose()

    method.__name__, method.__doc__ = build.__name__, build.__doc__
    return method


class AsyncMemoryMesh:
    """The memorymesh API, for asyncio. `url` and `api_key` default to MEMORY_URL (else
    http://127.0.0.1:8000) and MEMORY_API_KEY. Use it as an async context manager, or `await aclose()` it."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retries: Retries | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = base_url(url)
        self.retries = retries or Retries()
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers(api_key), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncMemoryMesh:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, call: Call[R]) -> R:
        """Send `call` (retrying as the retry rules allow) and read its answer."""
        response = await self.respond(call)
        try:
            return call.read(response)
        finally:
            await response.aclose()

    async def respond(self, call: Call[Any]) -> httpx.Response:
        """The accepted answer to `call` (open, if streamed: the caller closes it); a refusal raises."""
        request = call.request(self._http)
        attempts = Attempts(self.retries, call.safe, self._clock)
        while True:
            try:
                response = await self._http.send(request, stream=call.stream)
            except httpx.TransportError as error:
                delay = attempts.after_error(error)
            else:
                if call.accepts(response.status_code):
                    return response
                await response.aread()
                await response.aclose()
                delay = attempts.after_response(response)
            await self._sleep(delay)

    # Messages
    store_message = sent(ops.store_message)
    store_messages = sent(ops.store_messages)
    get_message = sent(ops.get_message)
    update_message = sent(ops.update_message)
    delete_message = sent(ops.delete_message)
    archive_message = sent(ops.archive_message)
    restore_message = sent(ops.restore_message)
    # Tenants
    me = sent(ops.me)
    tenants = sent(ops.tenants)
    tenant_conversations = sent(ops.tenant_conversations)
    # Conversations and users
    conversation_page = sent(ops.conversation_page)
    conversation_messages = paged(ops.conversation_page)
    erase_conversation = sent(ops.erase_conversation)
    user_page = sent(ops.user_page)
    user_messages = paged(ops.user_page)
    erase_user = sent(ops.erase_user)
    export_user = streamed(ops.export_user)
    # Search and context
    search = sent(ops.search)
    search_post = sent(ops.search_post)
    context = sent(ops.context)
    # Operations
    health = sent(admin.health)
    readiness = sent(admin.readiness)
    metrics = sent(admin.metrics)
    queue = sent(admin.queue)
    retry_failed = sent(admin.retry_failed)
    # Admin
    create_api_key = sent(admin.create_api_key)
    list_api_keys = sent(admin.list_api_keys)
    revoke_api_key = sent(admin.revoke_api_key)
    erase_tenant = sent(admin.erase_tenant)
    get_retention = sent(admin.get_retention)
    set_retention = sent(admin.set_retention)
    run_retention = sent(admin.run_retention)
    retention_runs = sent(admin.retention_runs)
    get_limits = sent(admin.get_limits)
    set_limits = sent(admin.set_limits)
