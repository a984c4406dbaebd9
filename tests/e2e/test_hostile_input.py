"""Hostile input against the real server on the real PostgreSQL: each gets a 4xx naming the
problem, or a correct answer. Never a 5xx, never another tenant's data.
"""

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import ServerProcess

ADMIN_KEY = "e2e-hostile-admin-key-0001"
ACME_KEY = "e2e-hostile-acme-key-00001"
ADMIN = {"x-api-key": ADMIN_KEY}
ACME = {"x-api-key": ACME_KEY}
READ_TIMEOUT_SECONDS = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("hostile") / "data",
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_API_KEYS=f"{ACME_KEY}:acme",
        MEMORY_EMBEDDING_MODE="inline",
        MEMORY_HTTP_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT_SECONDS),
        # Both below the read timeout, or the server refuses to start.
        MEMORY_HTTP_REQUEST_DEADLINE_SECONDS="5",
        MEMORY_EMBEDDING_WAIT_SECONDS="1",
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output
    assert "Traceback" not in process.output, process.output


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def message(content: str = "hello", **fields: object) -> dict:
    return {"tenant_id": "acme", "conversation_id": "c", "role": "user", "content": content, **fields}


def assert_problem(response: httpx.Response, status: int, *named: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    text = response.text.lower()
    for word in named:
        assert word.lower() in text, f"{word!r} not named in {response.text}"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"content": "nul \x00 byte"}, ["content", "NUL"]),
        ({"conversation_id": "c\x00"}, ["conversation_id"]),
        ({"metadata": {"k": "v\x00"}}, ["metadata", "NUL"]),
        ({"metadata": {"k\x00": "v"}}, ["metadata", "NUL"]),
        ({"content": "lone \ud800 surrogate"}, ["content"]),
        ({"importance": -0.5}, ["importance"]),
        ({"importance": 1e308}, ["importance"]),
        ({"created_at": "99999-01-01T00:00:00Z"}, ["created_at"]),
        # Go's zero time.Time and .NET's DateTime.MinValue / MaxValue, which asyncpg would store
        # as PostgreSQL's -infinity / infinity; and the first instants past each end of the range.
        ({"created_at": "0001-01-01T00:00:00Z"}, ["created_at", "0001-01-02T00:00:00Z"]),
        ({"created_at": "9999-12-31T23:59:59.999999Z"}, ["created_at", "9999-12-30T23:59:59.999999Z"]),
        ({"created_at": "0001-01-01T23:59:59.999999Z"}, ["created_at"]),
        ({"created_at": "9999-12-31T00:00:00Z"}, ["created_at"]),
        ({"created_at": "0001-01-02T13:59:59+14:00"}, ["created_at"]),
        ({"created_at": "9999-12-30T12:00:00-12:00"}, ["created_at"]),
        ({"created_at": "0001-01-01T00:00:00+01:00"}, ["created_at"]),
        ({"created_at": "9999-12-31T23:59:59-23:59"}, ["created_at"]),
        ({"pinned": "yes"}, ["pinned"]),
        ({"importance": True}, ["importance"]),
        ({"created_at": 253402300800}, ["created_at", "ISO 8601"]),
    ],
    ids=[
        "nul-content",
        "nul-conversation",
        "nul-value",
        "nul-key",
        "surrogate",
        "negative",
        "huge",
        "year",
        "min",
        "max",
        "before-earliest",
        "after-latest",
        "before-earliest+14",
        "after-latest-12",
        "year-0-in-utc",
        "year-10000-in-utc",
        "pinned-text",
        "importance-bool",
        "created-at-number",
    ],
)
def test_bad_fields_are_422_naming_them(client: httpx.Client, fields: dict, named: list[str]) -> None:
    body = json.dumps(message(**fields)).encode()  # ASCII, with \u0000 and \ud800 escaped as a client sends them
    response = client.post("/v1/messages", content=body, headers={**ADMIN, "content-type": "application/json"})
    assert_problem(response, 422, *named)


@pytest.mark.parametrize(
    ("raw", "status", "named"),
    [
        (b'{"tenant_id": "acme", "content": "\xff\xfe"}', 400, ["UTF-8"]),
        (b'{"importance": NaN, "tenant_id": "acme", "content": "x"}', 400, ["NaN is not a JSON number"]),
        (b'{"importance": Infinity, "tenant_id": "acme", "content": "x"}', 400, ["Infinity is not a JSON number"]),
        (b'{"metadata": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}", 400, ["body"]),
    ],
    ids=["not-utf8", "nan", "infinity", "deep"],
)
def test_malformed_bodies_are_4xx(client: httpx.Client, raw: bytes, status: int, named: list[str]) -> None:
    response = client.post("/v1/messages", content=raw, headers={**ADMIN, "content-type": "application/json"})
    assert_problem(response, status, *named)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"query": "nul\x00byte"}, "query"),
        ({"query": "x" * 100_000}, "query"),
        ({"query": "x", "metadata": {"k": "nul\x00"}}, "metadata"),
    ],
    ids=["nul", "long", "nul-metadata"],
)
def test_bad_queries_are_4xx(client: httpx.Client, body: dict, named: str) -> None:
    response = client.post("/v1/memory/search", json={"tenant_id": "acme", **body}, headers=ADMIN)
    assert_problem(response, 422, named)


@pytest.mark.parametrize(
    ("window", "named"),
    [
        ({"since": "9999-12-31T00:00:00Z"}, "since"),
        ({"since": "9999-12-31T23:59:59.999999Z"}, "since"),
        ({"until": "0001-01-01T00:00:00Z"}, "until"),
        ({"until": "0001-01-01T23:59:59.999999Z"}, "until"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
    ],
    ids=["since-after-latest", "since-max", "until-min", "until-before-earliest", "no-offset", "reversed"],
)
def test_a_search_window_that_can_match_nothing_is_422_naming_it(
    client: httpx.Client, window: dict, named: str
) -> None:
    query = {"tenant_id": "acme", "query": "x", **window}
    assert_problem(client.get("/v1/memory/search", params=query, headers=ADMIN), 422, named)
    assert_problem(client.post("/v1/memory/search", json=query, headers=ADMIN), 422, named)


@pytest.mark.parametrize(
    "raw",
    [b"1e309", b"-1e309", b"-1", b"0", b"365001", b"1e300"],
    ids=["overflows-to-infinity", "overflows-to-minus-infinity", "negative", "zero", "past-the-bound", "huge"],
)
@pytest.mark.parametrize("field", ["archive_after_days", "delete_after_days"])
def test_retention_days_that_would_overflow_the_cutoff_are_422_naming_the_field(
    client: httpx.Client, field: str, raw: bytes
) -> None:
    body = b'{"' + field.encode() + b'": ' + raw + b"}"
    response = client.put(
        "/v1/admin/tenants/acme/retention", content=body, headers={**ADMIN, "content-type": "application/json"}
    )
    assert_problem(response, 422, field)


def test_a_request_line_longer_than_the_server_reads_is_refused(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /v1/memory/search?tenant_id=acme&query=" + b"x" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = s.recv(1024)
    assert answer == b"" or answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), answer  # refused or closed, never 5xx


@pytest.mark.parametrize(
    "params",
    [{"top_k": "-1"}, {"top_k": "100000000000000000000"}, {"top_k": "1e3"}, {"mode": "drop table"}],
    ids=["negative", "huge", "float", "mode"],
)
def test_bad_numbers_in_a_search_are_422(client: httpx.Client, params: dict) -> None:
    response = client.get("/v1/memory/search", params={"tenant_id": "acme", "query": "x", **params}, headers=ADMIN)
    assert_problem(response, 422)


METACHARACTERS = [
    "Robert'); DROP TABLE messages;--",
    "!&|():*<-> '' \\ % _ ;",
    "a & ! b | (c <-> d):* e",
    "\"quoted\" 'single' `back`",
    "%' OR '1'='1",
]


@pytest.mark.parametrize("text", METACHARACTERS)
def test_sql_and_full_text_metacharacters_are_only_text(client: httpx.Client, text: str) -> None:
    stored = client.post("/v1/messages", json=message(f"note {text}", conversation_id="meta"), headers=ADMIN)
    assert stored.status_code == 201, stored.text
    for mode in ("keyword", "semantic", "hybrid"):
        found = client.get(
            "/v1/memory/search", params={"tenant_id": "acme", "query": text, "mode": mode, "top_k": 50}, headers=ADMIN
        )
        assert found.status_code == 200, found.text
        assert all(r["message"]["tenant_id"] == "acme" for r in found.json()["results"])
    listed = client.get("/v1/conversations/meta/messages", params={"tenant_id": "acme"}, headers=ADMIN)
    assert f"note {text}" in [m["content"] for m in listed.json()["messages"]]


@pytest.mark.parametrize(
    "lookalike",
    ["ａｃｍｅ", "acme\u200b", "ACME", "acme ", "acm\u0435", "acme\u0301"],
    ids=["fullwidth", "zero-width", "upper", "space", "cyrillic-e", "combining"],
)
def test_a_tenant_id_that_only_looks_like_acme_is_not_acme(client: httpx.Client, lookalike: str) -> None:
    """acme's key reaches acme only; what an admin stores under a lookalike never shows in acme."""
    refused = client.get("/v1/memory/search", params={"tenant_id": lookalike, "query": "x"}, headers=ACME)
    assert refused.status_code in (403, 422), refused.text
    secret = message(f"lookalike secret {lookalike!r}", tenant_id=lookalike)
    stored = client.post("/v1/messages", json=secret, headers=ADMIN)
    assert stored.status_code in (201, 422), stored.text
    found = client.get(
        "/v1/memory/search", params={"tenant_id": "acme", "query": "lookalike secret", "top_k": 100}, headers=ACME
    )
    assert found.status_code == 200, found.text
    assert all(r["message"]["tenant_id"] == "acme" for r in found.json()["results"])
    assert not any("lookalike secret" in r["message"]["content"] for r in found.json()["results"])


def test_a_slow_client_is_cut_off_and_others_are_served_meanwhile(server: ServerProcess) -> None:
    """Slow loris: requests begun and never finished. Everyone else is answered meanwhile, and
    the server drops each idle connection once the read timeout passes."""
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    try:
        for s in slow:
            s.sendall(b"GET /v1/admin/health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        assert httpx.get(f"{server.url}/v1/admin/health", timeout=5).status_code == 200
        for s in slow:
            s.settimeout(READ_TIMEOUT_SECONDS * 5)
            try:
                closed = s.recv(1024)  # b"" once the server closes it (or a 4xx)
            except ConnectionResetError:
                closed = b""
            assert closed == b"" or closed.startswith(b"HTTP/1.1 4"), closed
        assert time.monotonic() - started < READ_TIMEOUT_SECONDS * 5
    finally:
        for s in slow:
            s.close()


@pytest.mark.parametrize(
    "name", ["nul \x00 byte", "lone \ud800 surrogate", "x" * 201, " "], ids=["nul", "surrogate", "long", "blank"]
)
def test_a_bad_api_key_name_is_422_naming_it(client: httpx.Client, name: str) -> None:
    body = json.dumps({"name": name, "tenants": ["acme"]}).encode()  # \u0000 and \ud800 escaped, as a client sends them
    response = client.post("/v1/admin/api-keys", content=body, headers={**ADMIN, "content-type": "application/json"})
    assert_problem(response, 422, "name")


def test_a_retry_is_a_replay_only_when_it_is_the_same_message(client: httpx.Client) -> None:
    """The rule of README's POST /v1/messages row, through PostgreSQL (which gives 1e23 back as
    an integer, and created_at in UTC)."""
    first = message(
        "Table for four at eight",
        metadata={"amount": 100.0, "big": 1e23},
        importance=0.7,
        pinned=True,
        created_at="2026-05-01T09:30:00Z",
        client_message_id="replay-1",
    )
    stored = client.post("/v1/messages", json=first, headers=ACME)
    assert stored.status_code == 201, stored.text
    same = {**first, "metadata": {"big": 10**23, "amount": 100}, "created_at": "2026-05-01T11:30:00+02:00"}
    again = client.post("/v1/messages", json=same, headers=ACME)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true", again.text
    assert again.json()["id"] == stored.json()["id"]
    for changed, named in (
        ({"metadata": {"amount": 101, "big": 1e23}}, "metadata"),
        ({"importance": 0.9}, "importance"),
        ({"pinned": False}, "pinned"),
        ({"created_at": "2026-05-01T09:31:00Z"}, "created_at"),
    ):
        assert_problem(client.post("/v1/messages", json={**first, **changed}, headers=ACME), 409, "replay-1", named)
    assert client.get(f"/v1/messages/{stored.json()['id']}", params={"tenant_id": "acme"}, headers=ACME).json() == {
        **stored.json(),
        "metadata": {"amount": 100.0, "big": 10**23},
    }


def test_nothing_hostile_reached_another_tenant_or_made_a_5xx(server: ServerProcess) -> None:
    metrics = httpx.get(f"{server.url}/metrics").text
    server_errors = [
        line
        for line in metrics.splitlines()
        if line.startswith("memorymesh_http_requests_total") and 'status="5' in line and not line.endswith(" 0.0")
    ]
    assert server_errors == []
