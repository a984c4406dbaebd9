"""Rate limits at the HTTP edge, with the in-process limiter: per key, per tenant, per override."""

import pytest

from config.settings import Settings
from tests.unit.conftest import ACME_KEY, ADMIN_KEY, GLOBEX_KEY
from tests.unit.test_http_api import message, problem_of

ACME = {"x-api-key": ACME_KEY}
ADMIN = {"x-api-key": ADMIN_KEY}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings, with limits."""
    return settings.model_copy(update={"global_rate_limit": "5/hour", "tenant_rate_limit": "3/hour"})


async def test_the_tenant_limit_refuses_with_429_retry_after_and_ratelimit_headers(client):
    for remaining in (2, 1, 0):
        allowed = await client.post("/v1/messages", json=message(), headers=ACME)
        assert allowed.status_code == 202
        assert allowed.headers["RateLimit-Limit"] == "3"
        assert allowed.headers["RateLimit-Remaining"] == str(remaining)

    refused = await client.post("/v1/messages", json=message(), headers=ACME)
    body = await problem_of(refused, 429)
    assert body["code"] == "rate_limited" and "tenant" in body["detail"]
    assert 1150 <= int(refused.headers["Retry-After"]) <= 1200  # one request per 20 minutes
    assert refused.headers["RateLimit-Remaining"] == "0"

    other_tenant = await client.post("/v1/messages", json=message(tenant_id="acme-labs"), headers=ACME)
    assert other_tenant.status_code == 202  # its own bucket


async def test_the_key_limit_spans_tenants(client):
    for tenant in ("acme", "acme", "acme-labs", "acme-labs", "acme-labs"):
        assert (await client.post("/v1/messages", json=message(tenant_id=tenant), headers=ACME)).status_code == 202
    body = await problem_of(await client.get("/v1/admin/queue", headers=ACME), 429)
    assert "API key" in body["detail"]


async def test_client_headers_cannot_move_a_caller_to_a_fresh_bucket(client):
    for i in range(3):
        spoofed = {**ACME, "X-Forwarded-For": f"10.0.0.{i}", "X-Real-IP": f"10.1.0.{i}", "x-tenant-id": f"t{i}"}
        assert (await client.post("/v1/messages", json=message(), headers=spoofed)).status_code == 202
    spoofed = {**ACME, "X-Forwarded-For": "192.0.2.1", "X-Real-IP": "192.0.2.2", "x-tenant-id": "fresh"}
    await problem_of(await client.post("/v1/messages", json=message(), headers=spoofed), 429)


async def test_a_key_cannot_drain_the_bucket_of_a_tenant_it_does_not_hold(client):
    for _ in range(4):
        await problem_of(await client.post("/v1/messages", json=message(tenant_id="globex"), headers=ACME), 403)
    theirs = await client.post("/v1/messages", json=message(tenant_id="globex"), headers={"x-api-key": GLOBEX_KEY})
    assert theirs.status_code == 202 and theirs.headers["RateLimit-Remaining"] == "2"


async def test_an_admin_override_replaces_the_tenant_default(client):
    put = await client.put("/v1/admin/tenants/acme/limits", json={"rate_limit": "1/hour"}, headers=ADMIN)
    assert put.status_code == 200
    assert await put.get_json() == {"tenant_id": "acme", "rate_limit": "1/hour", "default": "3/hour"}

    assert (await client.post("/v1/messages", json=message(), headers=ACME)).status_code == 202
    await problem_of(await client.post("/v1/messages", json=message(), headers=ACME), 429)

    cleared = await client.put("/v1/admin/tenants/acme-labs/limits", json={"rate_limit": None}, headers=ADMIN)
    assert (await cleared.get_json())["rate_limit"] is None


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/admin/tenants/acme/limits", {"rate_limit": "lots"}, 422),
        ("/v1/admin/tenants/acme/limits", {"rate_limit": "0/minute"}, 422),
        ("/v1/admin/tenants/bad%20id/limits", {"rate_limit": "1/minute"}, 422),
        ("/v1/admin/tenants/acme/limits", {}, 422),
    ],
)
async def test_bad_limits_are_422(client, path, body, status):
    await problem_of(await client.put(path, json=body, headers=ADMIN), status)


async def test_only_admins_set_limits(client):
    await problem_of(
        await client.put("/v1/admin/tenants/acme/limits", json={"rate_limit": "9/hour"}, headers=ACME), 403
    )
    await problem_of(await client.get("/v1/admin/tenants/acme/limits", headers=ACME), 403)
