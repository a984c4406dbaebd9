"""The embedder failing under the real server: Gemini's embedding API (tests/gemini_fake.py, a
real HTTP server the server process calls) answers 503s, then times out, then refuses one
batch, then recovers. Writes are accepted throughout, keyword search keeps answering, no try
is counted against a message while the model cannot work, and every message ends embedded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.server import ServerProcess, wait_until
from tests.gemini_fake import FakeGemini, Reply, error_body

KEY = "e2e-embedder-faults-key-01"
OVERLOADED = Reply(status=503, body=error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
TOO_SLOW = Reply(delay=3.0)  # past MEMORY_GEMINI_TIMEOUT_SECONDS
REFUSED = Reply(status=400, body=error_body(400, "INVALID_ARGUMENT", "Request contains an invalid argument."))


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


def message(content: str) -> dict[str, str]:
    return {"tenant_id": "acme", "conversation_id": "c", "role": "user", "content": content}


async def rows(database_url: str) -> list[tuple[str, str, int]]:
    conn = await asyncpg.connect(database_url)
    try:
        # A claim counts its try up front (a worker that dies has used it) and gives it back
        # when the model could not work: tries, here, leaves out the claim in progress.
        found = await conn.fetch(
            "SELECT content, embedding_status, embedding_attempts - (embedding_claim IS NOT NULL)::int AS tries "
            "FROM messages"
        )
    finally:
        await conn.close()
    return [(r["content"], r["embedding_status"], r["tries"]) for r in found]


def search(client: httpx.Client, query: str, mode: str) -> httpx.Response:
    return client.get("/v1/memory/search", params={"tenant_id": "acme", "query": query, "mode": mode, "top_k": 20})


def write(client: httpx.Client, texts: list[str]) -> None:
    for text in texts:
        answer = client.post("/v1/messages", json=message(text))
        assert answer.status_code == 202, answer.text


def test_writes_survive_a_failing_embedder_and_end_embedded_when_it_recovers(
    tmp_path: Path, database_url: str, fake: FakeGemini
) -> None:
    fake.always(OVERLOADED)
    server = ServerProcess(
        tmp_path / "data",
        MEMORY_DATABASE_URL=database_url,
        MEMORY_API_KEYS=f"{KEY}:acme",
        MEMORY_EMBEDDING_PROVIDER="google_gemini",
        MEMORY_GEMINI_API_KEY="fake-key",
        MEMORY_GEMINI_BASE_URL=fake.base_url,
        MEMORY_GEMINI_TIMEOUT_SECONDS="1",
        MEMORY_GEMINI_MAX_RETRIES="0",
        MEMORY_EMBEDDING_DIMENSIONS="64",
        MEMORY_EMBEDDING_RETRY_BASE_SECONDS="0.5",
        MEMORY_EMBEDDING_SWEEP_SECONDS="1",
    ).start()
    try:
        server.wait_ready()  # an overloaded API at start does not stop the service
        with server.client(KEY) as client:
            # The model answers 503: writes are accepted, keyword search finds them, and a search
            # that needs a query vector says why it cannot answer.
            write(client, [f"overloaded {i}: the lighthouse keeper logs the tide" for i in range(10)])
            asked = len(fake.received)
            wait_until(lambda: len(fake.received) >= asked + 3, 30, "the workers trying the model")
            keyword = search(client, "lighthouse", "keyword")
            assert keyword.status_code == 200 and len(keyword.json()["results"]) == 10, keyword.text
            semantic = search(client, "tide", "semantic")
            assert semantic.status_code == 503, semantic.text
            assert semantic.json()["code"] == "embedder_unavailable" and int(semantic.headers["retry-after"]) > 0

            # It times out.
            fake.always(TOO_SLOW)
            write(client, [f"timed out {i}: the ferry waits for the fog to lift" for i in range(10)])
            asked = len(fake.received)
            wait_until(lambda: len(fake.received) >= asked + 3, 30, "the workers trying the slow model")
            assert {(status, tries) for _, status, tries in asyncio.run(rows(database_url))} == {("pending", 0)}

            # It recovers, but first refuses one batch (a 400: the messages' fault, so counted).
            fake.script(REFUSED)
            fake.always(Reply())
            wait_until(lambda: {s for _, s, _ in asyncio.run(rows(database_url))} == {"embedded"}, 120, "all embedded")
            found = search(client, "fog", "semantic")
            assert found.status_code == 200 and found.json()["results"], found.text
        stored = asyncio.run(rows(database_url))
        assert len(stored) == 20
        # Dozens of calls failed while the model was away; at most the refused batch counted.
        assert max(tries for _, _, tries in stored) <= 1
    finally:
        assert server.stop() == 0, server.output
    assert "Traceback" not in server.output, server.output
