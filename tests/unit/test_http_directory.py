"""The console's listings over HTTP on in-memory adapters: tenants, conversations, and a
conversation's messages newest first."""

import uuid
from dataclasses import replace
from datetime import timedelta
from urllib.parse import quote

import pytest

from tests.unit.conftest import ACME_KEY, ADMIN_KEY, GLOBEX_KEY, NOW
from tests.unit.test_http_api import ACME, message, problem_of

ADMIN = {"x-api-key": ADMIN_KEY}
GLOBEX = {"x-api-key": GLOBEX_KEY}


async def store(client, headers=ACME, **fields) -> dict:
    response = await client.post("/v1/messages?wait=true", json=message(**fields), headers=headers)
    assert response.status_code == 201, await response.get_data()
    return await response.get_json()


async def test_an_admin_lists_every_tenant_a_tenant_key_only_its_own(client):
    await store(client)
    await store(client, headers=GLOBEX, tenant_id="globex")

    everyone = await (await client.get("/v1/tenants", headers=ADMIN)).get_json()
    assert everyone == {"tenants": [{"tenant_id": "acme"}, {"tenant_id": "globex"}], "next_after": None}

    first = await (await client.get("/v1/tenants?limit=1", headers=ADMIN)).get_json()
    assert first == {"tenants": [{"tenant_id": "acme"}], "next_after": "acme"}
    rest = await (await client.get("/v1/tenants?limit=1&after=acme", headers=ADMIN)).get_json()
    assert rest == {"tenants": [{"tenant_id": "globex"}], "next_after": None}

    own = await (await client.get("/v1/tenants", headers=ACME)).get_json()
    assert own == {"tenants": [{"tenant_id": "acme"}, {"tenant_id": "acme-labs"}], "next_after": None}


async def test_a_tenants_conversations_are_listed_with_their_figures(client, table):
    await store(client, conversation_id="c1", created_at=NOW.isoformat())
    last = await store(client, conversation_id="c1", created_at=(NOW + timedelta(minutes=5)).isoformat())
    await store(client, conversation_id="c2", created_at=NOW.isoformat())
    last_id = uuid.UUID(last["id"])
    table.rows[last_id] = replace(table.rows[last_id], archived_at=NOW)  # as retention archives it

    listing = await (await client.get("/v1/tenants/acme/conversations?limit=1", headers=ACME)).get_json()
    assert listing["next_after"] == "c1"
    [c1] = listing["conversations"]
    assert (c1["conversation_id"], c1["messages"], c1["archived"]) == ("c1", 2, 1)
    assert c1["first_at"].startswith("2026-06-01T12:00:00") and c1["last_at"].startswith("2026-06-01T12:05:00")
    rest = await (await client.get("/v1/tenants/acme/conversations?after=c1", headers=ACME)).get_json()
    assert [c["conversation_id"] for c in rest["conversations"]] == ["c2"] and rest["next_after"] is None


async def test_another_tenants_conversations_are_refused_as_its_messages_are(client):
    await store(client, headers=GLOBEX, tenant_id="globex", conversation_id="board")
    listing = await problem_of(await client.get("/v1/tenants/globex/conversations", headers=ACME), 403)
    messages = await problem_of(
        await client.get("/v1/conversations/board/messages?tenant_id=globex", headers=ACME), 403
    )
    assert listing["code"] == messages["code"] == "forbidden"
    assert "board" not in str(listing)


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/v1/tenants?limit=0", "limit"),
        ("/v1/tenants?limit=1001", "limit"),
        ("/v1/tenants?limit=many", "limit"),
        ("/v1/tenants?after=a%00b", "after"),
        ("/v1/tenants?after=" + "x" * 10_000, "after"),
        ("/v1/tenants?sideways=1", "sideways"),
        ("/v1/tenants/acme/conversations?limit=0", "limit"),
        ("/v1/tenants/acme/conversations?after=a%00b", "after"),
        ("/v1/tenants/" + quote("bad tenant") + "/conversations", "tenant_id"),
        ("/v1/conversations/c1/messages?tenant_id=acme&order=sideways", "order"),
    ],
)
async def test_bad_listing_arguments_are_422_naming_the_field(client, path, named):
    body = await problem_of(await client.get(path, headers=ADMIN), 422)
    assert named in [e["field"] for e in body["errors"]], body


async def test_a_conversation_pages_newest_first_and_oldest_first(client):
    ids = [
        (await store(client, content=f"turn {i}", created_at=(NOW - timedelta(minutes=10 - i)).isoformat()))["id"]
        for i in range(5)
    ]
    await store(client, content="elsewhere", conversation_id="c2")

    async def walk(order: str | None) -> list[str]:
        seen, cursor = [], None
        while True:
            url = "/v1/conversations/c1/messages?tenant_id=acme&limit=2"
            url += (f"&order={order}" if order else "") + (f"&cursor={cursor}" if cursor else "")
            page = await (await client.get(url, headers=ACME)).get_json()
            seen += [m["id"] for m in page["messages"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    assert await walk(None) == ids
    assert await walk("oldest") == ids
    assert await walk("newest") == ids[::-1]


async def test_openapi_documents_the_listings(client):
    document = await (await client.get("/openapi.json")).get_json()
    assert {"/v1/tenants", "/v1/tenants/{tenant_id}/conversations"} <= set(document["paths"])
    parameters = document["paths"]["/v1/conversations/{conversation_id}/messages"]["get"]["parameters"]
    assert "order" in {p["name"] for p in parameters}


async def test_me_tells_a_key_what_it_is(client):
    acme = await (await client.get("/v1/me", headers={"x-api-key": ACME_KEY})).get_json()
    assert (acme["admin"], acme["tenants"]) == (False, 2)  # acme and acme-labs
    admin = await (await client.get("/v1/me", headers={"x-api-key": ADMIN_KEY})).get_json()
    assert admin["admin"] is True and admin["key_id"] != acme["key_id"]
    assert (await client.get("/v1/me")).status_code == 401
