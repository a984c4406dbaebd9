"""Admins manage stored API keys over HTTP: create (shown once), list (never the key), revoke."""

import pytest

from tests.unit.conftest import ACME_KEY, ADMIN_KEY
from tests.unit.test_http_api import message, problem_of

ADMIN = {"x-api-key": ADMIN_KEY}


async def test_a_created_key_works_for_its_tenants_only_until_revoked(client):
    created = await client.post("/v1/admin/api-keys", json={"name": "support bot", "tenants": ["acme"]}, headers=ADMIN)
    assert created.status_code == 201
    body = await created.get_json()
    assert body["key"].startswith("mm_") and body["tenants"] == ["acme"] and body["admin"] is False
    key = {"x-api-key": body["key"]}

    assert (await client.post("/v1/messages", json=message(), headers=key)).status_code == 202
    await problem_of(await client.post("/v1/messages", json=message(tenant_id="globex"), headers=key), 403)

    listed = await (await client.get("/v1/admin/api-keys", headers=ADMIN)).get_json()
    (entry,) = [k for k in listed["api_keys"] if k["id"] == body["id"]]
    assert "key" not in entry and entry["name"] == "support bot" and entry["revoked_at"] is None

    assert (await client.delete(f"/v1/admin/api-keys/{body['id']}", headers=ADMIN)).status_code == 204
    await problem_of(await client.post("/v1/messages", json=message(), headers=key), 401)
    listed = await (await client.get("/v1/admin/api-keys", headers=ADMIN)).get_json()
    assert [k["revoked_at"] for k in listed["api_keys"] if k["id"] == body["id"]] != [None]


async def test_only_admins_manage_keys(client):
    tenant_key = {"x-api-key": ACME_KEY}
    await problem_of(
        await client.post("/v1/admin/api-keys", json={"name": "x", "admin": True}, headers=tenant_key), 403
    )
    await problem_of(await client.get("/v1/admin/api-keys", headers=tenant_key), 403)
    await problem_of(await client.delete("/v1/admin/api-keys/anything", headers=tenant_key), 403)
    await problem_of(await client.get("/v1/admin/api-keys"), 401)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "no tenants"}, "tenants"),
        ({"name": "bad", "tenants": ["not a tenant!"]}, "tenants"),
        ({"name": "", "tenants": ["acme"]}, "name"),
        ({"name": "x" * 201, "tenants": ["acme"]}, "name"),
        ({"name": "nul \x00 byte", "tenants": ["acme"]}, "name"),
        ({"name": "lone \ud800 surrogate", "tenants": ["acme"]}, "name"),
        ({"tenants": ["acme"]}, "name"),
        ({"name": "x", "tenants": ["acme"], "extra": 1}, "extra"),
    ],
)
async def test_a_bad_key_request_is_422_naming_the_field(client, body, field):
    response = await problem_of(await client.post("/v1/admin/api-keys", json=body, headers=ADMIN), 422)
    assert field in [e["field"] for e in response["errors"]]


async def test_revoking_an_unknown_key_is_404(client):
    await problem_of(await client.delete("/v1/admin/api-keys/00000000-0000-0000-0000-000000000000", headers=ADMIN), 404)
    await problem_of(await client.delete("/v1/admin/api-keys/not-a-uuid", headers=ADMIN), 404)
