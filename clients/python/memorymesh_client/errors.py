"""What a refused request raises: one exception class per kind of problem, each carrying the
problem's `status`, `code`, `detail` and the fields it names (application/problem+json)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import httpx


class MemoryMeshError(Exception):
    """Any problem the service answered (or, for `Unreachable`, the absence of an answer).

    `fields` maps each field a validation problem names (`role`, `messages[1].content`) to its
    message; `problem` is the whole problem body as sent.
    """

    def __init__(
        self,
        status: int | None,
        code: str,
        detail: str,
        fields: Mapping[str, str] | None = None,
        problem: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}" if status else f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.fields: dict[str, str] = dict(fields or {})
        self.problem: dict[str, Any] = dict(problem or {})
        self.headers: dict[str, str] = dict(headers or {})


class BadRequest(MemoryMeshError):
    """400: the body is not JSON, not UTF-8, or not an object."""


class Unauthorized(MemoryMeshError):
    """401: no API key, or one the service does not know."""


class Forbidden(MemoryMeshError):
    """403: the key may not act on this tenant, or the route needs an admin key."""


class NotFound(MemoryMeshError):
    """404: no such message (or route)."""


class Conflict(MemoryMeshError):
    """409: an idempotency key reused for another message (`idempotency_conflict`, `fields` names
    what differs), or a retention run already in progress (`retention_running`)."""


class PayloadTooLarge(MemoryMeshError):
    """413: the body is larger than the service takes."""


class ValidationError(MemoryMeshError):
    """422: a parameter breaks a rule; `fields` names each."""


class Throttled(MemoryMeshError):
    """A refusal that passes with time: `retry_after` is the seconds the service asked to wait."""

    @property
    def retry_after(self) -> float | None:
        return retry_after_seconds(self.headers)


class RateLimited(Throttled):
    """429: over a rate limit (`rate_limited`) or the tenant's share of work in progress
    (`tenant_busy`). `reset` is the seconds until the bucket is full again, when sent."""

    @property
    def reset(self) -> float | None:
        return number(header(self.headers, "RateLimit-Reset"))


class Overloaded(Throttled):
    """503: the service (or a part it needs: database, model, queue, rate limiter) cannot answer now."""


class ServerError(MemoryMeshError):
    """Any other 5xx, e.g. 504 `deadline_exceeded` (the work may still finish: retry writes with
    the same idempotency key)."""


class Unreachable(MemoryMeshError):
    """No answer at all: the connection failed or timed out, every attempt."""


BY_STATUS: dict[int, type[MemoryMeshError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
    503: Overloaded,
}


def header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


def number(text: str | None) -> float | None:
    try:
        return None if text is None else max(0.0, float(text))
    except ValueError:
        return None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds, or an HTTP date (RFC 9110)."""
    text = header(headers, "Retry-After")
    if text is None:
        return None
    seconds = number(text)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_from(response: httpx.Response) -> MemoryMeshError:
    """The exception for a refused response; its body must have been read."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):  # not a problem body (a proxy's page, say)
        body = {"code": f"http_{status}", "detail": response.text[:500] or response.reason_phrase}
    fields = {
        str(item.get("field")): str(item.get("message"))
        for item in body.get("errors") or []
        if isinstance(item, dict) and "field" in item
    }
    kind = BY_STATUS.get(status, ServerError if status >= 500 else MemoryMeshError)
    return kind(
        status,
        str(body.get("code") or f"http_{status}"),
        str(body.get("detail") or ""),
        fields,
        body,
        dict(response.headers),
    )
