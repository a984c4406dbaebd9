"""The operators' operations as pure functions: health, readiness, metrics, the embedding queue,
API keys, tenants, retention and rate limits (admin keys, but health and readiness)."""

from __future__ import annotations

from collections.abc import Sequence

from memorymesh_client import types as t
from memorymesh_client.calls import UNSET, Call, Unset, fields, given, json_body, nothing, operation, path, text

# Operations: health, readiness, metrics, the queue


@operation("GET", "/v1/admin/health")
def health() -> Call[t.Health]:
    """Liveness (no key needed)."""
    return Call("GET", "/v1/admin/health", json_body)


@operation("GET", "/v1/admin/readiness")
def readiness() -> Call[t.Readiness]:
    """Database, vector index and embedder; an unready service answers (503) rather than raises."""
    return Call("GET", "/v1/admin/readiness", json_body, accept=frozenset({503}))


@operation("GET", "/metrics")
def metrics() -> Call[str]:
    """The Prometheus text exposition."""
    return Call("GET", "/metrics", text)


@operation("GET", "/v1/admin/queue")
def queue() -> Call[t.QueueStatus]:
    """Admin: the embedding queue's pending, claimed and failed messages."""
    return Call("GET", "/v1/admin/queue", json_body)


@operation("POST", "/v1/admin/queue/retry-failed")
def retry_failed(tenant_id: str | None = None) -> Call[t.Requeued]:
    """Admin: failed messages back in the queue with fresh tries (one tenant's, or all)."""
    return Call("POST", "/v1/admin/queue/retry-failed", json_body, body=fields(tenant_id=tenant_id))


# Admin: keys, tenants, retention, limits


@operation("POST", "/v1/admin/api-keys")
def create_api_key(name: str, tenants: Sequence[str] = (), *, admin: bool = False) -> Call[t.CreatedApiKey]:
    """Admin: a new API key, shown this once. Not repeated on a doubtful failure (it would make two)."""
    body = {"name": name, "tenants": list(tenants), "admin": admin}
    return Call("POST", "/v1/admin/api-keys", json_body, body=body, safe=False)


@operation("GET", "/v1/admin/api-keys")
def list_api_keys() -> Call[t.ApiKeys]:
    """Admin: the stored keys (never the keys themselves)."""
    return Call("GET", "/v1/admin/api-keys", json_body)


@operation("DELETE", "/v1/admin/api-keys/{key_id}")
def revoke_api_key(key_id: str) -> Call[None]:
    """Admin: revoke a key."""
    return Call("DELETE", path("/v1/admin/api-keys/{id}", id=key_id), nothing)


@operation("DELETE", "/v1/admin/tenants/{tenant_id}")
def erase_tenant(tenant_id: str) -> Call[t.Erasure]:
    """Admin: erase everything of the tenant (its API keys are left alone)."""
    return Call("DELETE", path("/v1/admin/tenants/{id}", id=tenant_id), json_body)


@operation("GET", "/v1/admin/tenants/{tenant_id}/retention")
def get_retention(tenant_id: str) -> Call[t.TenantRetention]:
    """Admin: the tenant's retention overrides and the policy that applies."""
    return Call("GET", path("/v1/admin/tenants/{id}/retention", id=tenant_id), json_body)


@operation("PUT", "/v1/admin/tenants/{tenant_id}/retention")
def set_retention(
    tenant_id: str,
    *,
    archive_after_days: float | Unset | None = UNSET,
    delete_after_days: float | Unset | None = UNSET,
    importance_threshold: float | Unset = UNSET,
    protected_roles: Sequence[t.Role] | Unset = UNSET,
) -> Call[t.TenantRetention]:
    """Admin: replace the tenant's overrides with the fields given (None days: never); none clears them."""
    body = given(
        archive_after_days=archive_after_days,
        delete_after_days=delete_after_days,
        importance_threshold=importance_threshold,
        protected_roles=protected_roles if isinstance(protected_roles, Unset) else list(protected_roles),
    )
    return Call("PUT", path("/v1/admin/tenants/{id}/retention", id=tenant_id), json_body, body=body)


@operation("POST", "/v1/admin/retention/run")
def run_retention(tenant_id: str | None = None, *, dry_run: bool = False) -> Call[t.RetentionRun]:
    """Admin: run retention now (one tenant, or all); `dry_run` counts and changes nothing.
    Repeating a run does nothing twice (what it did needs no doing), so it is retried."""
    body = fields(tenant_id=tenant_id, dry_run=dry_run)
    return Call("POST", "/v1/admin/retention/run", json_body, body=body)


@operation("GET", "/v1/admin/retention/runs")
def retention_runs() -> Call[t.RetentionRuns]:
    """Admin: the latest retention runs."""
    return Call("GET", "/v1/admin/retention/runs", json_body)


@operation("GET", "/v1/admin/tenants/{tenant_id}/limits")
def get_limits(tenant_id: str) -> Call[t.TenantLimit]:
    """Admin: the tenant's own rate limit, if any, and the default."""
    return Call("GET", path("/v1/admin/tenants/{id}/limits", id=tenant_id), json_body)


@operation("PUT", "/v1/admin/tenants/{tenant_id}/limits")
def set_limits(tenant_id: str, rate_limit: str | None) -> Call[t.TenantLimit]:
    """Admin: the tenant's own rate limit (e.g. "120/minute"); None removes it."""
    return Call("PUT", path("/v1/admin/tenants/{id}/limits", id=tenant_id), json_body, body={"rate_limit": rate_limit})
