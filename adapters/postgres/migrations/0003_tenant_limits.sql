-- Per-tenant rate limits that override MEMORY_TENANT_RATE_LIMIT (PUT /v1/admin/tenants/{tenant}/limits).
CREATE TABLE tenant_limits (
    tenant_id       text PRIMARY KEY,
    requests        integer NOT NULL CHECK (requests > 0),
    period_seconds  integer NOT NULL CHECK (period_seconds > 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
