"""The published OpenAPI document lists every answer a route can give.

Besides each route's own answers, any key-protected route can refuse a missing key, a key
for another tenant, a rate limit, a part that cannot answer or an overload (503), and any route with a body
can refuse the body. Every problem is sent as application/problem+json (RFC 9457), and
documented so. Clients generated from the document, and schemathesis
(tests/e2e/test_api_fuzz.py), hold the server to it.
"""

from __future__ import annotations

from typing import Any

from quart_schema.openapi import OpenAPIProvider

from entrypoints.http.schemas.common import Problem

PROBLEM_JSON = "application/problem+json"
PUBLIC = ("/v1/admin/health", "/v1/admin/readiness")  # no key
EVERY_KEYED_ROUTE = {
    401: "No API key, or one the service does not know",
    403: "The key may not act on this tenant, or this route needs an admin key",
    422: "A parameter breaks a rule; `errors` names each",
    429: (
        "Over a rate limit (rate_limited), or the tenant has its share of searches and batch writes "
        "in progress (tenant_busy); Retry-After says when to come back"
    ),
    503: (
        "A part the service needs (database, model, queue, rate limiter) cannot answer now, "
        "or this process is overloaded; Retry-After. `query_timeout` (no Retry-After): the request took "
        "longer than the database's statement timeout; narrow it rather than repeat it"
    ),
}
# Routes that stream NDJSON (one JSON document a line) rather than answer one JSON body.
NDJSON_ROUTES = {
    "/v1/users/{user_id}/export": "The user's messages, one a line, each as GET /v1/messages/{message_id} answers it",
}
EVERY_BODY = {
    400: "The body is not JSON, not UTF-8, or not an object",
    413: "The body is larger than the limit",
}


class ProblemsDocumented(OpenAPIProvider):
    def schema(self) -> dict[str, Any]:
        document = super().schema()
        document["components"]["schemas"]["Problem"] = Problem.model_json_schema()
        problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                responses: dict[int, Any] = operation.setdefault("responses", {})  # quart-schema's keys are ints
                for status, response in responses.items():
                    content = response.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
                if path in NDJSON_ROUTES:
                    ndjson = {"application/x-ndjson": {"schema": {"type": "string"}}}
                    responses.setdefault(200, {"description": NDJSON_ROUTES[path], "content": ndjson})
                if not any(200 <= int(status) < 300 for status in responses):  # routes that answer "" 204
                    responses[204] = {"description": "Done; no body"}
                if path == "/metrics":
                    text = {"text/plain": {"schema": {"type": "string"}}}
                    responses.setdefault(200, {"description": "Prometheus text exposition format", "content": text})
                if not path.startswith("/v1/") or path in PUBLIC:
                    continue
                common = {**EVERY_KEYED_ROUTE, **(EVERY_BODY if method in ("post", "put", "patch") else {})}
                for status, description in common.items():
                    responses.setdefault(status, {"description": description, "content": {PROBLEM_JSON: problem}})
        return document
