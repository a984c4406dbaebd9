"""A statement that runs past the command timeout on the real PostgreSQL: 503 query_timeout,
saying so, without Retry-After (the same request would run out again); not 'the database is
unavailable'. The statement is slow because another session holds the table it reads."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from dependency_injector import providers

from config.container import Container
from config.settings import Settings
from entrypoints.http.app import create_app
from tests.conftest import DIMENSIONS
from tests.fakes.embedder import DeterministicEmbedder

ACME_KEY = "query-timeout-acme-key-0001"
ACME = {"x-api-key": ACME_KEY}
COMMAND_TIMEOUT_SECONDS = 0.3


@pytest.fixture
async def client(database_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        data_dir=tmp_path,
        api_keys=f"{ACME_KEY}:acme",
        embedding_mode="inline",
        retention_schedule_seconds=0,
        db_command_timeout_seconds=COMMAND_TIMEOUT_SECONDS,
    )
    container = Container(settings=settings)
    container.embedder.override(providers.Object(DeterministicEmbedder(DIMENSIONS)))
    async with create_app(container, on_admin_key=lambda key: None).test_app() as app:
        yield app.test_client()


async def test_a_statement_past_the_timeout_is_query_timeout_without_retry_after(client, database_url: str) -> None:
    stored = await client.post(
        "/v1/messages",
        json={"tenant_id": "acme", "conversation_id": "c1", "role": "user", "content": "kettle notes"},
        headers=ACME,
    )
    assert stored.status_code == 201, await stored.get_data(as_text=True)
    listing = "/v1/conversations/c1/messages?tenant_id=acme"

    holder = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
            response = await client.get(listing, headers=ACME)
    finally:
        await holder.close()

    body = await response.get_json()
    assert response.status_code == 503, body
    assert body["code"] == "query_timeout" and "statement timeout" in body["detail"], body
    assert "Retry-After" not in response.headers
    again = await client.get(listing, headers=ACME)  # the pooled connection serves on
    assert again.status_code == 200 and len((await again.get_json())["messages"]) == 1
