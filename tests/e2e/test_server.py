"""The real server process over HTTP: embedded PostgreSQL + pgvector and the real MiniLM model."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ServerProcess, mapped_libraries, postgres_running_on

ADMIN_KEY = "e2e-admin-key-000000000001"
ACME_KEY = "e2e-acme-key-0000000000001"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("e2e") / "data",
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_API_KEYS=f"{ACME_KEY}:acme",
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output
    assert ADMIN_KEY not in process.output and ACME_KEY not in process.output  # keys are never logged


def store(client: httpx.Client, content: str, tenant: str = "acme", **fields) -> dict:
    """Store and wait until the background worker has made it searchable."""
    response = client.post(
        "/v1/messages",
        params={"wait": "true"},
        json={"tenant_id": tenant, "conversation_id": "trip", "role": "user", "content": content, **fields},
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_store_get_and_search_by_meaning(server: ServerProcess) -> None:
    with server.client(ACME_KEY) as client:
        store(client, "Let's meet at the train station at nine.")
        peanuts = store(client, "My son is allergic to peanuts, so no satay please.", importance=0.9)
        store(client, "The hotel has a rooftop pool and free breakfast.")

        fetched = client.get(f"/v1/messages/{peanuts['id']}", params={"tenant_id": "acme"})
        assert fetched.status_code == 200 and fetched.json() == peanuts
        assert peanuts["embedding_status"] == "embedded" and peanuts["importance"] == 0.9

        found = client.get("/v1/memory/search", params={"tenant_id": "acme", "query": "food restrictions", "top_k": 2})
        assert found.status_code == 200
        results = found.json()["results"]
        assert results[0]["message"]["id"] == peanuts["id"]
        assert results[0]["scores"]["similarity"] > results[1]["scores"]["similarity"]


def test_by_default_the_model_runs_on_onnx_runtime_and_torch_is_never_loaded(server: ServerProcess) -> None:
    """The default (MEMORY_EMBEDDING_RUNTIME=auto) runs the bundled model on ONNX Runtime: the
    serving process, having embedded and searched, has onnxruntime's library mapped and none of torch's."""
    with server.client(ACME_KEY) as client:
        store(client, "The ferry leaves from pier four.")
        found = client.get(
            "/v1/memory/search", params={"tenant_id": "acme", "query": "boat departure", "mode": "semantic"}
        )
        assert found.status_code == 200 and found.json()["results"], found.text
    assert server.process is not None
    libraries = mapped_libraries(server.process.pid)
    assert any(name.startswith("libonnxruntime") or name.startswith("onnxruntime_pybind11") for name in libraries)
    assert not [name for name in libraries if "torch" in name], sorted(n for n in libraries if "torch" in n)


def test_tenants_are_kept_apart(server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin:
        secret = store(admin, "The globex vault code is 7421.", tenant="globex")
    with server.client(ACME_KEY) as acme:
        assert acme.get("/v1/memory/search", params={"tenant_id": "globex", "query": "vault"}).status_code == 403
        assert acme.get(f"/v1/messages/{secret['id']}", params={"tenant_id": "globex"}).status_code == 403
        assert acme.get(f"/v1/messages/{secret['id']}", params={"tenant_id": "acme"}).status_code == 404
        found = acme.get("/v1/memory/search", params={"tenant_id": "acme", "query": "vault code", "top_k": 100})
        assert secret["id"] not in {r["message"]["id"] for r in found.json()["results"]}
    with server.client("not-a-key-at-all-xxxxx") as stranger:
        assert stranger.get("/v1/memory/search", params={"tenant_id": "acme", "query": "x"}).status_code == 401


def test_readiness_and_docs(server: ServerProcess) -> None:
    with server.client() as client:
        ready = client.get("/v1/admin/readiness")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {
            "database": "ok",
            "vector_index": "ok",
            "embedder": "ok",
            "queue": "ok",
            "rate_limiter": "ok",
        }
        assert client.get("/openapi.json").json()["info"]["title"] == "memorymesh"
        assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/v1/messages", {"content": b'{"tenant_id": ', "headers": {"content-type": "application/json"}}),
        (
            "POST",
            "/v1/messages",
            {"content": b'{"content": "\xc3\x28"}', "headers": {"content-type": "application/json"}},
        ),
        ("POST", "/v1/messages", {"content": b"x" * 2_000_000, "headers": {"content-type": "application/json"}}),
        ("POST", "/v1/messages", {"json": {"tenant_id": "acme", "conversation_id": "c", "role": "user", "content": 5}}),
        ("GET", "/v1/memory/search?tenant_id=acme&query=" + "q" * 12_000, {}),
        ("GET", "/v1/memory/search?tenant_id=acme&query=" + "q" * 60_000, {}),
        ("GET", "/v1/memory/search?tenant_id=acme%00&query=a", {}),
        # Past the ends of the accepted range, a window that can match nothing (one that only reaches
        # past an end is clamped to it, and answered).
        ("GET", "/v1/memory/search?tenant_id=acme&query=a&since=9999-12-31T23:59:59-01:00", {}),
        ("GET", "/v1/memory/search?tenant_id=acme&query=a&until=0001-01-01T00:00:00%2B01:00", {}),
        (
            "POST",
            "/v1/messages",
            {
                "json": {
                    "tenant_id": "acme",
                    "conversation_id": "c",
                    "role": "user",
                    "content": "x",
                    "created_at": "0001-01-01T00:00:00+01:00",
                }
            },
        ),
        (
            "POST",
            "/v1/messages",
            {
                "content": b'{"tenant_id": "acme", "importance": ' + b"1" * 5000 + b"}",
                "headers": {"content-type": "application/json"},
            },
        ),
        (
            "POST",
            "/v1/messages",
            {
                "json": {
                    "tenant_id": "acme",
                    "conversation_id": "c",
                    "role": "user",
                    "content": "x",
                    "metadata": {"a": "\u0000"},
                }
            },
        ),
        ("GET", "/v1/memory/search?tenant_id=acme&query=a&top_k=-1", {}),
    ],
)
def test_hostile_requests_get_a_4xx_never_a_5xx(server: ServerProcess, method: str, path: str, kwargs: dict) -> None:
    with server.client(ACME_KEY) as client:
        response = client.request(method, path, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])


def test_sql_and_full_text_metacharacters_are_stored_and_searched_as_text(server: ServerProcess) -> None:
    nasty = '\'; DROP TABLE messages; -- & | ! :* <-> \\ %_ $1 "quoted" (a & !b)'
    with server.client(ACME_KEY) as client:
        stored = store(client, nasty)
        found = client.get("/v1/memory/search", params={"tenant_id": "acme", "query": nasty, "top_k": 1})
        assert found.status_code == 200
        assert found.json()["results"][0]["message"] == stored
        assert stored["content"] == nasty


def test_a_request_line_past_the_servers_limit_is_431(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
        raw.sendall(
            b"GET /v1/memory/search?tenant_id=acme&query=" + b"q" * 200_000 + b" HTTP/1.1\r\n"
            b"Host: localhost\r\nx-api-key: " + ACME_KEY.encode() + b"\r\n\r\n"
        )
        assert raw.recv(64).startswith(b"HTTP/1.1 431")


def test_undecodable_percent_escapes_are_searched_as_replacement_characters(server: ServerProcess) -> None:
    with server.client(ACME_KEY) as client:
        response = client.get("/v1/memory/search?tenant_id=acme&query=%ff%fe")
    assert response.status_code == 200
    assert isinstance(response.json()["results"], list)


def test_first_start_makes_one_key_and_data_survives_a_restart(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start().wait_ready()
    try:
        printed = re.findall(r"\bmm_[A-Za-z0-9_-]{43}\b", server.output)
        assert len(set(printed)) == 1, server.output
        key = printed[0]
        with server.client(key) as client:
            stored = store(client, "Remember that the wifi password is on the fridge.", tenant="home")
    finally:
        assert server.stop() == 0, server.output
    assert not postgres_running_on(tmp_path / "data" / "pg"), "the embedded PostgreSQL outlived the service"

    server.start().wait_ready()
    try:
        assert "mm_" not in server.output  # no second key: only the hash of the first was kept
        with server.client(key) as client:
            assert client.get(f"/v1/messages/{stored['id']}", params={"tenant_id": "home"}).json() == stored
            found = client.get("/v1/memory/search", params={"tenant_id": "home", "query": "network login"})
            assert [r["message"]["id"] for r in found.json()["results"]] == [stored["id"]]
    finally:
        assert server.stop() == 0, server.output


@pytest.mark.parametrize("processes", ["1", "2"])
def test_startup_refuses_a_database_without_pgvector(tmp_path: Path, processes: str) -> None:
    server = ServerProcess(
        tmp_path / "data",
        MEMORY_PROCESSES=processes,
        MEMORY_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/postgres",
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
    ).start()
    assert server.wait_exit() != 0
    assert "has no pgvector extension" in server.output
    assert "Traceback" not in server.output


def posts_counted(metrics: str) -> float:
    """POST /v1/messages requests in a scrape, whatever their status."""
    prefix = "memorymesh_http_requests_total{"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(prefix) and 'method="POST"' in line and 'route="/v1/messages"' in line
    )


def test_several_processes_share_the_port_and_stop_together(tmp_path: Path) -> None:
    import psutil

    server = ServerProcess(tmp_path / "data", MEMORY_PROCESSES="2", MEMORY_ADMIN_API_KEYS=ADMIN_KEY).start()
    try:
        server.wait_ready()
        server.wait_for_output("serving on", timeout=120, times=2)  # both processes
        assert server.process is not None
        children = [
            p for p in psutil.Process(server.process.pid).children() if "entrypoints.cli" in " ".join(p.cmdline())
        ]
        assert len(children) == 2
        with server.client(ADMIN_KEY) as client:
            stored = [store(client, f"Process test message number {i} about sailing.") for i in range(6)]
            found = client.get("/v1/memory/search", params={"tenant_id": "acme", "query": "sailing", "top_k": 10})
            assert {r["message"]["id"] for r in found.json()["results"]} == {m["id"] for m in stored}
        for i in range(20):  # a connection each: the kernel spreads them over both processes
            with server.client(ADMIN_KEY) as client:
                store(client, f"Spread message {i}")
        # Whichever process answers a scrape, it answers for both (prometheus-client's multiprocess mode).
        for _ in range(6):
            with server.client() as client:
                assert posts_counted(client.get("/metrics").text) == 26
    finally:
        assert server.stop() == 0, server.output
    assert not any(c.is_running() for c in children)
    assert not postgres_running_on(tmp_path / "data" / "pg"), "the embedded PostgreSQL outlived the service"


def test_store_and_search_by_meaning_with_qdrant(tmp_path: Path) -> None:
    from qdrant_client import QdrantClient

    server = ServerProcess(tmp_path / "data", MEMORY_VECTOR_STORE="qdrant", MEMORY_ADMIN_API_KEYS=ADMIN_KEY)
    server.start().wait_ready()
    try:
        with server.client(ADMIN_KEY) as client:
            store(client, "Let's meet at the train station at nine.")
            peanuts = store(client, "My son is allergic to peanuts, so no satay please.")
            store(client, "The hotel has a rooftop pool and free breakfast.", tenant="globex")
            found = client.get("/v1/memory/search", params={"tenant_id": "acme", "query": "food restrictions"})
            results = found.json()["results"]
            assert [r["message"]["id"] for r in results][:1] == [peanuts["id"]]
            assert len(results) == 2  # globex's message stays in globex
    finally:
        assert server.stop() == 0, server.output

    index = QdrantClient(path=str(tmp_path / "data" / "qdrant"))  # the index itself, not only the API
    try:
        assert index.count("memorymesh_messages").count == 3
    finally:
        index.close()


def test_several_processes_stopped_while_starting_exit_cleanly(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", MEMORY_PROCESSES="2", MEMORY_ADMIN_API_KEYS=ADMIN_KEY).start()
    server.wait_for_output("api processes started", timeout=120)  # the copies are still loading the model
    assert server.stop() == 0, server.output
    assert not postgres_running_on(tmp_path / "data" / "pg"), "the embedded PostgreSQL outlived the service"


def test_metrics_report_the_database_pool_of_the_process(server: ServerProcess) -> None:
    """The sweeper reports the pool at its first round, at start (Database.report_pool)."""

    def pool(state: str) -> float | None:
        found = re.search(rf'^memorymesh_db_pool_connections{{state="{state}"}} (\S+)$', metrics, re.M)
        return float(found.group(1)) if found else None

    metrics = httpx.get(f"{server.url}/metrics").text
    in_use, idle = pool("in_use"), pool("idle")
    assert in_use is not None and idle is not None, metrics
    assert in_use + idle >= 1  # the pool holds at least its minimum of one connection
