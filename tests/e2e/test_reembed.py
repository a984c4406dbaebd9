"""A model change end to end: real servers, the real model, `memorymesh reembed` as an operator runs it.

The "new" model is the bundled all-MiniLM-L6-v2 with CLS pooling instead of mean pooling:
another model, of the same dimension, which is the case where mixing vectors would go
unnoticed.
"""

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
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


async def _admin(pg_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def database_url(pg_dsn: str) -> Iterator[str]:
    name = f"e2e_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(pg_dsn, f'CREATE DATABASE "{name}"'))
    yield urlunsplit(urlsplit(pg_dsn)._replace(path=f"/{name}"))
    asyncio.run(_admin(pg_dsn, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def new_model(tmp_path: Path) -> str:
    folder = tmp_path / "models" / "minilm-cls"
    shutil.copytree(bundled_model_path(), folder)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 384, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    return str(folder)


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

            reembed = subprocess.run(
                [MEMORYMESH, "reembed"],
                env={
                    **{k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")},
                    **env,
                    "MEMORY_DATA_DIR": str(tmp_path / "cli"),
                    "MEMORY_EMBEDDING_MODEL": new_model,
                    "HF_HUB_OFFLINE": "1",
                },
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
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
