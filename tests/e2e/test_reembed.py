"""A model change end to end: real servers, the real model, `memorymesh reembed` as an operator runs it.

The "new" model is the bundled all-MiniLM-L6-v2 with CLS pooling instead of mean pooling:
another model, of the same dimension, which is the case where mixing vectors would go
unnoticed.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from adapters.embeddings.sentence_transformers import bundled_model_path, model_identity
from tests.e2e.server import MEMORYMESH, ServerProcess

ADMIN_KEY = "e2e-reembed-admin-key-0001"
HEADERS = {"x-api-key": ADMIN_KEY}
FACTS = [
    "My sister Ana moved to Lisbon in March.",
    "The car needs new brakes before the trip.",
    "I am allergic to shellfish, so no paella for me.",
    "Our wedding anniversary is on the 14th of June.",
]


@pytest.fixture
def new_model(tmp_path: Path) -> str:
    folder = tmp_path / "models" / "minilm-cls"
    shutil.copytree(bundled_model_path(), folder)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 384, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    return str(folder)


def run_reembed(data_dir: Path, env: dict[str, str], model: str) -> subprocess.CompletedProcess[str]:
    """`memorymesh reembed` as an operator runs it, with `model` configured."""
    return subprocess.run(
        [MEMORYMESH, "reembed"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")},
            **env,
            "MEMORY_DATA_DIR": str(data_dir),
            "MEMORY_EMBEDDING_MODEL": model,
            "HF_HUB_OFFLINE": "1",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def search(client: httpx.Client, query: str) -> httpx.Response:
    return client.get("/v1/memory/search", params={"tenant_id": "acme", "query": query, "top_k": 1, "mode": "semantic"})


def test_a_model_change_refuses_to_start_then_reembed_switches_while_the_old_server_serves(
    tmp_path: Path, database_url: str, new_model: str
) -> None:
    env = {"MEMORY_DATABASE_URL": database_url, "MEMORY_ADMIN_API_KEYS": ADMIN_KEY}
    before = f"{model_identity(bundled_model_path(), 'all-MiniLM-L6-v2')} (384 dimensions)"
    after = f"{model_identity(new_model, 'minilm-cls')} (384 dimensions)"
    old = ServerProcess(tmp_path / "old", **env).start().wait_ready()
    try:
        with old.client(ADMIN_KEY) as client:
            for fact in FACTS:
                response = client.post(
                    "/v1/messages",
                    params={"wait": "true"},
                    json={"tenant_id": "acme", "conversation_id": "c", "role": "user", "content": fact},
                )
                assert response.status_code == 201, response.text

            refused = ServerProcess(tmp_path / "refused", **env, MEMORY_EMBEDDING_MODEL=new_model).start()
            assert refused.wait_exit(timeout=240) != 0
            assert f"made by {before}" in refused.output
            assert f"configured for {after}" in refused.output
            assert "memorymesh reembed" in refused.output

            reembed = run_reembed(tmp_path / "cli", env, new_model)
            assert reembed.returncode == 0, reembed.stderr
            assert "4/4" in reembed.stderr  # the progress bar
            assert f"switched from {before} to {after}" in reembed.stdout
            assert "4 messages re-embedded" in reembed.stdout

            # The old server no longer answers from vectors that are not its model's.
            assert search(client, "seafood allergy").status_code == 503
            assert search(client, "seafood allergy").json()["code"] == "embedding_model_changed"
            readiness = client.get("/v1/admin/readiness")
            assert readiness.status_code == 503
            assert "memorymesh reembed" in str(readiness.json()["checks"])
    finally:
        old.stop()

    new = ServerProcess(tmp_path / "new", **env, MEMORY_EMBEDDING_MODEL=new_model).start().wait_ready()
    try:
        with new.client(ADMIN_KEY) as client:
            found = search(client, FACTS[2])
            assert found.status_code == 200, found.text
            assert found.json()["results"][0]["message"]["content"] == FACTS[2]
            assert client.get("/v1/admin/readiness").status_code == 200
    finally:
        new.stop()


def test_with_qdrant_the_new_model_fills_a_collection_of_its_own(tmp_path: Path, new_model: str) -> None:
    """Qdrant holds the vectors outside PostgreSQL: reembed switches the record, then fills the
    new model's own collection from PostgreSQL (with the service stopped)."""
    data_dir = tmp_path / "data"
    env = {"MEMORY_VECTOR_STORE": "qdrant", "MEMORY_ADMIN_API_KEYS": ADMIN_KEY}
    old = ServerProcess(data_dir, **env).start().wait_ready()
    try:
        with old.client(ADMIN_KEY) as client:
            for fact in FACTS:
                body = {"tenant_id": "acme", "conversation_id": "c", "role": "user", "content": fact}
                assert client.post("/v1/messages", params={"wait": "true"}, json=body).status_code == 201
    finally:
        assert old.stop() == 0, old.output

    reembed = run_reembed(data_dir, env, new_model)
    assert reembed.returncode == 0, reembed.stderr
    assert "stop every memorymesh process" in reembed.stderr
    assert "acme: 4 messages reindexed" in reembed.stdout

    new = ServerProcess(data_dir, **env, MEMORY_EMBEDDING_MODEL=new_model).start().wait_ready()
    try:
        with new.client(ADMIN_KEY) as client:
            found = search(client, FACTS[2])
            assert found.status_code == 200, found.text
            assert found.json()["results"][0]["message"]["content"] == FACTS[2]
    finally:
        assert new.stop() == 0, new.output

    from qdrant_client import QdrantClient

    qdrant = QdrantClient(path=str(data_dir / "qdrant"))
    try:
        collections = {c.name for c in qdrant.get_collections().collections}
        assert collections == {"memorymesh_messages", "memorymesh_messages_m2"}  # the old one kept, unread
        assert qdrant.count("memorymesh_messages_m2").count == 4
    finally:
        qdrant.close()
