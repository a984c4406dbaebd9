"""The one table from error codes to HTTP statuses, and problem+json bodies (RFC 9457)."""

from __future__ import annotations

import logging
import math
import traceback
from typing import Any

from pydantic import ValidationError
from quart import Quart, Response, jsonify
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from application.fair_share import TenantBusy
from application.throttle import RateLimited
from domain.errors import DomainError, FieldProblem, ValidationFailed
from domain.rate_limit import RateDecision

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5
# 503s that pass with time carry Retry-After. A statement that ran out of time would run out
# again: narrowing the request helps, repeating it does not, so none is invited.
NO_RETRY_AFTER = frozenset({"query_timeout"})

STATUS_BY_CODE: dict[str, int] = {
    "validation_failed": 422,
    "malformed_body": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "idempotency_conflict": 409,
    "retention_running": 409,
    "rate_limited": 429,
    "tenant_busy": 429,
    "rate_limiter_unavailable": 503,
    "storage_unavailable": 503,
    "query_timeout": 503,
    "embedder_unavailable": 503,
    "queue_unavailable": 503,
    "embedding_model_changed": 503,
}


class Unauthorized(DomainError):
    code = "unauthorized"


class MalformedBody(DomainError):
    code = "malformed_body"


def problem(
    status: int, code: str, detail: str, errors: list[FieldProblem] | None = None, headers: dict[str, str] | None = None
) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:memorymesh:problem:{code}",
        "title": code.replace("_", " "),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if errors:
        body["errors"] = [{"field": p.field, "message": p.message} for p in errors]
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    if status == 503 and code not in NO_RETRY_AFTER:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def field_problems(error: ValidationError) -> list[FieldProblem]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"]) or "body"
        message = item["msg"].removeprefix("Value error, ")  # a rule of ours says it in its own words
        if item["type"] in ("dict_type", "model_type") and field == "body":
            message = "the body must be a JSON object, sent with Content-Type: application/json"
        problems.append(FieldProblem(field, message))
    return problems


def rate_limit_headers(decision: RateDecision) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset_after)),
    }


def problem_headers(error: DomainError) -> dict[str, str] | None:
    """What a refusal's answer carries besides its body: when to come back, and the limit."""
    if isinstance(error, RateLimited):
        return {"Retry-After": str(max(1, math.ceil(error.decision.retry_after)))} | rate_limit_headers(error.decision)
    if isinstance(error, TenantBusy):
        return {"Retry-After": str(error.retry_after_seconds)}
    return None


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(DomainError)
    async def domain_error(error: DomainError) -> Response:
        status = STATUS_BY_CODE.get(error.code, 400)
        errors = list(error.problems) if isinstance(error, ValidationFailed) else None
        if status >= 500:
            logger.warning("request failed", extra={"code": error.code, "detail": error.detail})
        return problem(status, error.code, error.detail, errors, problem_headers(error))

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(error: RequestSchemaValidationError) -> Response:
        cause = error.validation_error
        problems = field_problems(cause) if isinstance(cause, ValidationError) else [FieldProblem("body", str(cause))]
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return problem(422, "validation_failed", detail, problems)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        return problem(status, code, error.description or error.name or "error")

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        logger.error("unhandled error", extra=unhandled(error))
        return problem(500, "internal_error", "an unexpected error occurred; it has been logged")


def unhandled(error: BaseException) -> dict[str, object]:
    """What a log line says of an unexpected error: its type and where it was raised, never its
    message, which may quote what the client sent (a query's words, a message's content)."""
    frames = traceback.extract_tb(error.__traceback__)
    return {
        "error_type": f"{type(error).__module__}.{type(error).__qualname__}",
        "raised_at": [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames[-12:]],
    }
