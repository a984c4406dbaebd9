"""A request the server cannot answer within its deadline gets 504, not a dropped connection,
and the write it carried is stored all the same (the real server, inline embedding)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import ServerProcess, wait_until

pytestmark = pytest.mark.slow

KEY = "e2e-deadline-admin-key-001"
HEADERS = {"x-api-key": KEY}
BATCH = 150  # long messages: embedding them takes far longer than the deadline


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("deadline") / "data",
        MEMORY_ADMIN_API_KEYS=KEY,
        MEMORY_EMBEDDING_MODE="inline",  # the batch is embedded before the answer: slow on purpose
        MEMORY_HTTP_REQUEST_DEADLINE_SECONDS="0.2",
        MEMORY_EMBEDDING_WAIT_SECONDS="0.1",
        MEMORY_HTTP_READ_TIMEOUT_SECONDS="3",
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output
    assert "Traceback" not in process.output, process.output


def batch(n: int) -> dict[str, list[dict[str, str]]]:
    words = "the quick brown fox jumps over the lazy dog near the river bank at dawn "
    return {
        "messages": [
            {
                "tenant_id": "acme",
                "conversation_id": "slow",
                "role": "user",
                "content": f"{i} " + words * 60,
                "client_message_id": f"m-{i}",
            }
            for i in range(n)
        ]
    }


def test_a_request_past_its_deadline_gets_504_and_its_write_is_kept(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60) as client:
        late = client.post("/v1/messages/batch", json=batch(BATCH))
        assert late.status_code == 504, late.text
        assert late.headers["content-type"] == "application/problem+json"
        assert late.json()["code"] == "deadline_exceeded"

        late_polls = []

        def stored() -> int:
            page = client.get("/v1/conversations/slow/messages", params={"tenant_id": "acme", "limit": 200})
            if page.status_code == 504:  # a poll can be late too, while the batch's embedding holds both cores
                late_polls.append(page)
                return 0
            return len(page.json()["messages"])

        wait_until(lambda: stored() == BATCH, 120, "the late batch stored")
        # The work's own answer, dropped: its log line says it was a 201.
        wait_until(lambda: '"route": "/v1/messages/batch", "status": 201' in server.output, 30, "the work ended")

        metrics = client.get("/metrics").text
        (line,) = [x for x in metrics.splitlines() if x.startswith("memorymesh_http_deadline_exceeded_total")]
        assert float(line.split()[-1]) == 1 + len(late_polls)
    assert "request past its deadline" in server.output


def test_a_server_stopped_while_late_work_goes_on_stores_the_write_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The client was told 504 ("a write may still be stored"): a SIGTERM right then must not
    cut the write off halfway, nor fail it on services already stopped."""
    settings = {
        "MEMORY_ADMIN_API_KEYS": KEY,
        "MEMORY_EMBEDDING_MODE": "inline",
        "MEMORY_HTTP_REQUEST_DEADLINE_SECONDS": "0.2",
        "MEMORY_EMBEDDING_WAIT_SECONDS": "0.1",
        "MEMORY_HTTP_READ_TIMEOUT_SECONDS": "3",
    }
    server = ServerProcess(tmp_path / "data", **settings).start()
    server.wait_ready()
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60) as client:
        assert client.post("/v1/messages/batch", json=batch(BATCH)).status_code == 504  # longer than a graceful stop
    assert server.stop() == 0, server.output
    assert "Traceback" not in server.output, server.output
    assert '"route": "/v1/messages/batch", "status": 201' in server.output  # it ended before the services did

    again = ServerProcess(tmp_path / "data", **settings).start()
    try:
        again.wait_ready()
        with again.client(KEY) as client:
            page = client.get("/v1/conversations/slow/messages", params={"tenant_id": "acme", "limit": 200})
            assert len(page.json()["messages"]) == BATCH
    finally:
        assert again.stop() == 0, again.output
