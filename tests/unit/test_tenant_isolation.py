"""Every /v1 route, found by walking the app's URL map, refuses a key of one tenant aimed at another.

A route is probed with acme's key and every tenant-ish input (path, query, body) pointing
at globex. It must answer 403 or 404 without a byte of globex's data; a listing scoped to the
caller by its key alone (no tenant input) answers 200, naming none of globex. A new route joins
the matrix by itself; one that lets acme through (or that takes an input this test has no
sample for) fails it until it is made safe (or the sample is added).

/mcp is not in the URL map (an ASGI dispatcher in front of the app sends it to the MCP SDK):
every MCP tool is probed the same way, acme's key naming globex, in tests/e2e/test_mcp.py.
"""

import json
import uuid

import pytest
from pydantic import BaseModel

from tests.unit.conftest import ACME_KEY, GLOBEX_KEY

ACME = {"x-api-key": ACME_KEY}
GLOBEX = {"x-api-key": GLOBEX_KEY}
SECRET = "globex-vault-code-7421"
SECRET_CONVERSATION = "globex-board-meeting"
SECRET_USER = "globex-ceo"
PUBLIC = {"/v1/admin/health", "/v1/admin/readiness"}  # liveness and readiness: no key, no tenant data
# Routes that name no tenant: they answer about the caller's own (its tenants, its key), so acme
# gets a 200 without globex.
CALLERS_OWN = {"/v1/tenants", "/v1/me"}


def victim_message() -> dict:
    return {
        "tenant_id": "globex",
        "conversation_id": SECRET_CONVERSATION,
        "role": "user",
        "content": f"The {SECRET} opens the vault.",
        "metadata": {"marker": SECRET},
        "user_id": SECRET_USER,
    }


# What each input is set to: always the other tenant, or harmless values around it.
SAMPLES: dict[str, object] = {
    "tenant_id": "globex",
    "conversation_id": SECRET_CONVERSATION,
    "user_id": SECRET_USER,
    "role": "user",
    "content": "probe from acme",
    "query": SECRET,
    "top_k": 10,
    "max_tokens": 1000,
    "messages": [victim_message()],
    "name": "probe",
    "tenants": ["globex"],
    "rate_limit": "1000/hour",
}


def fill(model: type[BaseModel], where: str) -> dict:
    values = {}
    for name, field in model.model_fields.items():
        if name in SAMPLES:
            values[name] = SAMPLES[name]
        elif field.is_required():
            pytest.fail(f"{model.__name__}.{name} ({where}) has no sample here: add one to SAMPLES")
    return values


@pytest.fixture
async def victim(client) -> dict:
    stored = await client.post("/v1/messages?wait=true", json=victim_message(), headers=GLOBEX)
    assert stored.status_code == 201
    return await stored.get_json()


async def test_no_route_lets_a_tenant_reach_another(client, victim, table):
    app = client.app
    path_samples = {
        "message_id": victim["id"],
        "tenant_id": "globex",
        "conversation_id": SECRET_CONVERSATION,
        "user_id": SECRET_USER,
        "key_id": str(uuid.uuid4()),
    }
    probed = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1") or rule.rule in PUBLIC:
            continue
        view = app.view_functions[rule.endpoint]
        missing = set(rule.arguments) - set(path_samples)
        assert not missing, f"{rule.rule}: no sample for path argument {missing}"
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", path_samples[argument]).replace(
                f"<uuid:{argument}>", path_samples[argument]
            )
        query_model = getattr(view, "_quart_schema_querystring_schema", None)
        body_model = getattr(view, "_quart_schema_request_schema", (None, None))[0]
        query = fill(query_model, "query") if query_model else {}
        body = fill(body_model, "body") if body_model else None
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = await client.open(path, method=method, query_string=query, json=body, headers=ACME)
            text = (await response.get_data()).decode()
            if rule.rule in CALLERS_OWN:
                assert response.status_code == 200, (method, rule.rule, response.status_code, text[:300])
                assert "globex" not in text, (method, rule.rule, "leaked", text[:300])
            else:
                assert response.status_code in (403, 404), (method, rule.rule, response.status_code, text[:300])
            for secret in (SECRET, SECRET_CONVERSATION, SECRET_USER):
                assert secret not in text, (method, rule.rule, "leaked", text[:300])
            probed.append(f"{method} {rule.rule}")

    assert len(probed) >= 10, probed  # the matrix really walked the routes
    theirs = [m for m in table.rows.values() if m.tenant_id == "globex"]
    assert [m.content for m in theirs] == [victim_message()["content"]]  # nothing written into globex
    assert json.dumps(victim_message()["metadata"]) == json.dumps(theirs[0].metadata)
