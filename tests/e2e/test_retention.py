"""Retention in the real server process: the in-process schedule, and `memorymesh retention run`."""

import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.server import MEMORYMESH, ServerProcess

ADMIN = "e2e-retention-admin-key-01"


def old(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def filler(conversation: str = "c", **fields: object) -> dict:
    return {"tenant_id": "home", "conversation_id": conversation, "role": "user", "content": "ok", **fields}


def found_ids(client, query: str) -> set[str]:
    answer = client.get("/v1/memory/search", params={"tenant_id": "home", "query": query, "top_k": 20})
    assert answer.status_code == 200, answer.text
    return {r["message"]["id"] for r in answer.json()["results"]}


def test_the_schedule_archives_in_the_server_and_restore_brings_it_back(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data", MEMORY_ADMIN_API_KEYS=ADMIN, MEMORY_RETENTION_SCHEDULE_SECONDS="1"
    ).start()
    try:
        server.wait_ready()
        with server.client(ADMIN) as client:
            stale = client.post("/v1/messages", params={"wait": "true"}, json=filler(created_at=old(45))).json()
            fresh = client.post("/v1/messages", params={"wait": "true"}, json=filler()).json()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                current = client.get(f"/v1/messages/{stale['id']}", params={"tenant_id": "home"}).json()
                if current["archived_at"] is not None:
                    break
                time.sleep(0.2)
            assert current["archived_at"] is not None, server.output
            assert found_ids(client, "ok") == {fresh["id"]}
            runs = client.get("/v1/admin/retention/runs").json()["runs"]
            assert any(r["trigger"] == "schedule" and r["totals"]["archived"] == 1 for r in runs)

            restored = client.post(f"/v1/messages/{stale['id']}/restore", params={"tenant_id": "home"})
            assert restored.status_code == 200 and restored.json()["archived_at"] is None
            assert found_ids(client, "ok") == {stale["id"], fresh["id"]}

            receipt = client.delete("/v1/conversations/c", params={"tenant_id": "home"})
            assert receipt.json()["deleted"] == {"messages": 2, "vectors": 2}
            assert found_ids(client, "ok") == set()
    finally:
        assert server.stop() == 0, server.output


def test_the_command_runs_retention_with_a_progress_bar_over_qdrant(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        "MEMORY_VECTOR_STORE": "qdrant",
        "MEMORY_ADMIN_API_KEYS": ADMIN,
        "MEMORY_RETENTION_SCHEDULE_SECONDS": "0",
        "MEMORY_RETENTION_DELETE_AFTER_DAYS": "90",
    }
    server = ServerProcess(data_dir, **env).start().wait_ready()
    try:
        with server.client(ADMIN) as client:
            stored = {
                name: client.post("/v1/messages", params={"wait": "true"}, json=filler(created_at=old(days))).json()
                for name, days in (("archive", 45), ("delete", 120), ("keep", 1))
            }
    finally:
        assert server.stop() == 0, server.output

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command_env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")}
        command_env.update(MEMORY_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", **env)
        return subprocess.run(
            [MEMORYMESH, "retention", "run", *args], env=command_env, capture_output=True, text=True, timeout=300
        )

    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "home: would archive / delete 1 / 1 of 2 examined" in dry.stdout
    assert "retention: 100%" in dry.stderr and "2/2" in dry.stderr  # the progress bar
    done = run("--tenant", "home")
    assert done.returncode == 0, done.stderr
    assert "home: archived / deleted 1 / 1 of 2 examined" in done.stdout
    again = run()
    assert "total: archived / deleted 0 / 0 of 0 examined" in again.stdout
    refused = run("--tenant", "not a tenant!")
    assert refused.returncode != 0 and "tenant_id" in refused.stderr and "Traceback" not in refused.stderr

    server = ServerProcess(data_dir, **env).start().wait_ready()
    try:
        with server.client(ADMIN) as client:
            params = {"tenant_id": "home"}
            assert client.get(f"/v1/messages/{stored['delete']['id']}", params=params).status_code == 404
            assert client.get(f"/v1/messages/{stored['archive']['id']}", params=params).json()["archived_at"]
            assert found_ids(client, "ok") == {stored["keep"]["id"]}  # Qdrant skips the archived point
    finally:
        assert server.stop() == 0, server.output
