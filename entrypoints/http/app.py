"""The Quart application: blueprints, OpenAPI, error mapping, and the container's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncGenerator, Callable

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from quart import Quart
from quart_schema import APIKeySecurityScheme, Info, QuartSchema

from application.ports.keys import CreatedApiKey
from config.container import Container, start, stop
from entrypoints.background import run_background
from entrypoints.console import pages_blueprint
from entrypoints.http import (
    admin,
    api_keys,
    auth,
    context,
    conversations,
    directory,
    me,
    messages,
    metrics,
    observe,
    queue,
    retention,
    search,
    tenants,
    users,
)
from entrypoints.http.admission import Admission, LoadShedding
from entrypoints.http.auth import API_KEY_HEADER, add_rate_limit_headers
from entrypoints.http.deadline import Deadline
from entrypoints.http.errors import register_error_handlers
from entrypoints.http.keep_alive import CloseAfterUnreadBody
from entrypoints.http.openapi import ProblemsDocumented
from entrypoints.http.request import api_request_class
from entrypoints.mcp import operations
from entrypoints.mcp.endpoint import mount
from entrypoints.version import VERSION

logger = logging.getLogger(__name__)

# At shutdown, how long the work answered by the deadline may take to end (a write it carries
# is stored) before the services stop.
LATE_WORK_SECONDS = 60.0
# An overloaded process is alive and its metrics show the overload: these are never shed.
NEVER_SHED = ("/v1/admin/health", "/v1/admin/readiness", "/metrics")


def announce_admin_key(created: CreatedApiKey) -> None:
    """Shown once, on stdout, never in the logs: only its hash is kept."""
    print(
        f"\nmemorymesh: no API key was configured, so one admin key was created.\n"
        f"  {created.key}\n"
        f"It is shown only this once; keep it (e.g. export MEMORY_API_KEY={created.key}).\n",
        file=sys.stdout,
        flush=True,
    )


# What the routes and the background work use: starting these starts every resource they
# need (the query cache's Redis client with search, before any search comes).
SERVES_WITH = (
    Container.api_keys,
    Container.throttle,
    Container.tenant_shares,
    Container.store_messages,
    Container.search_memory,
    Container.build_context,
    Container.queue_status,
    Container.run_retention,
    Container.embed_pending,
    Container.ensure_admin_key,
)


async def start_services(container: Container, on_admin_key: Callable[[CreatedApiKey], None]) -> None:
    """Start what the API serves with, then make sure a key exists. Idempotent: resources
    already started are reused."""
    await start(container, *SERVES_WITH)
    created = await container.ensure_admin_key()()
    if created is not None:
        on_admin_key(created)


def tracing_installed() -> bool:
    """Whether an entrypoint (or a test) installed a tracer provider: spans are recorded."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def create_app(container: Container, on_admin_key: Callable[[CreatedApiKey], None] = announce_admin_key) -> Quart:
    app = Quart("memorymesh")
    settings = container.settings()
    app.request_class = api_request_class(batch_max_bytes=settings.max_batch_body_bytes)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    QuartSchema(
        app,
        info=Info(
            title="memorymesh",
            version=VERSION,
            description="Conversation memory for LLM applications: store every message, search the ones that matter.",
        ),
        security_schemes={"apiKey": APIKeySecurityScheme(name=API_KEY_HEADER, in_="header")},
        openapi_provider_class=ProblemsDocumented,
        # Its pages load their scripts from a CDN (blank on a host without internet):
        # entrypoints/console serves /docs with every asset from here instead.
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    register_error_handlers(app)
    observe.observe(app)
    if tracing_installed():
        # A server span per request, continuing a caller's trace (traceparent); observe names
        # it by the route template. Only when traces go somewhere: the middleware costs about
        # a quarter of a write's CPU even with the no-op tracer (measured with wrk).
        app.asgi_app = OpenTelemetryMiddleware(  # type: ignore[method-assign,assignment]
            app.asgi_app,
            excluded_urls="/metrics,/v1/admin/health",  # scrapes and probes would drown the traces
            default_span_details=lambda scope: (scope.get("method", "HTTP"), {}),  # never the raw path
            exclude_spans=["receive", "send"],
        )
    # /mcp beside the routes, inside load shedding and the deadline: MCP calls share their bounds.
    app.asgi_app, mcp_running = mount(app.asgi_app, VERSION, settings.max_body_bytes)  # type: ignore[method-assign]
    if settings.http_max_in_flight:
        # Outermost: a shed request costs no span, no request context, no body read.
        counters = container.metrics()
        app.asgi_app = LoadShedding(  # type: ignore[method-assign]
            app.asgi_app,
            Admission(settings.http_max_in_flight, settings.http_queue_wait_seconds),
            exempt=NEVER_SHED,
            on_change=counters.http_in_flight,
            on_shed=counters.http_shed,
        )
    # Outside shedding: the deadline counts the wait for a slot too, as the client's does.
    app.asgi_app = deadline = Deadline(  # type: ignore[method-assign]
        app.asgi_app,
        settings.http_request_deadline_seconds,
        exempt=NEVER_SHED,
        on_expired=container.metrics().http_deadline_exceeded,
    )
    # Outermost of all: an answer any layer gives before the body arrived says the connection closes.
    app.asgi_app = CloseAfterUnreadBody(app.asgi_app)  # type: ignore[method-assign]
    app.after_request(add_rate_limit_headers)
    blueprints = (
        admin,
        metrics,
        queue,
        retention,
        api_keys,
        tenants,
        messages,
        conversations,
        search,
        users,
        context,
        directory,
        me,
    )
    for module in blueprints:
        app.register_blueprint(module.blueprint)
    app.register_blueprint(pages_blueprint(console=settings.console_enabled))
    container.wire(modules=[auth, observe, *blueprints, operations])

    @app.while_serving
    async def lifespan() -> AsyncGenerator[None, None]:
        background: asyncio.Task[None] | None = None
        try:
            await start_services(container, on_admin_key)
            background = asyncio.get_running_loop().create_task(run_background(container))
            async with mcp_running():
                logger.info("memorymesh ready")
                yield
        finally:
            await deadline.finish_late_work(LATE_WORK_SECONDS)
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
            await stop(container)
            container.unwire()

    return app
