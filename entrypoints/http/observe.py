"""What every request leaves behind: a request id, one JSON log line, HTTP metrics, and the
name of its trace span (the route template, never the raw path)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from dependency_injector.wiring import Provide, inject
from opentelemetry import trace
from quart import Quart, Response, g, request

from application.ports.observability import HttpMetrics
from config.container import Container
from config.logging import request_id_var

logger = logging.getLogger("memorymesh.requests")

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept only when it is short and plain (it goes into logs as it is).
CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
UNMATCHED = "unmatched"  # the route label of a request no route matched (404s of any path)


def route_of() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


async def begin() -> None:
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = sent if CLIENT_REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
    g.request_token = request_id_var.set(g.request_id)
    g.started = time.perf_counter()
    span = trace.get_current_span()
    if span.is_recording():
        route = route_of()
        span.update_name(f"{request.method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("memorymesh.request_id", g.request_id)
        # The path and query string hold tenants, ids and search text: the span keeps the template.
        span.set_attribute("http.target", route)
        span.set_attribute("http.url", f"{request.scheme}://{request.host}{route}")


@inject
async def finish(response: Response, metrics: HttpMetrics = Provide[Container.metrics]) -> Response:
    started: float | None = g.get("started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    route = route_of()
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    metrics.http_request(route, request.method, response.status_code, seconds)
    principal = g.get("principal")
    # One line per request: never the key, the query or any content.
    logger.info(
        "request",
        extra={
            "method": request.method,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2),
            "tenant": g.get("tenant_id"),
            "key_id": principal.key_id if principal is not None else None,
        },
    )
    return response


async def forget(_: BaseException | None) -> None:
    token = g.get("request_token")
    if token is not None:
        request_id_var.reset(token)


def observe(app: Quart) -> None:
    app.before_request(begin)
    app.after_request(finish)
    app.teardown_request(forget)
