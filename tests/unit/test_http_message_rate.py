"""MEMORY_TENANT_MESSAGE_RATE_LIMIT counts messages, not requests: a batch counts each."""

import pytest
from pydantic import ValidationError

from config.settings import Settings
from tests.unit.conftest import ACME_KEY
from tests.unit.test_http_api import message, problem_of

ACME = {"x-api-key": ACME_KEY}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"tenant_message_rate_limit": "10/hour", "max_batch_messages": 8})


async def test_a_batch_counts_each_of_its_messages(client):
    batch = {"messages": [message(content=f"note {i}") for i in range(8)]}
    assert (await client.post("/v1/messages/batch", json=batch, headers=ACME)).status_code == 202
    assert (await client.post("/v1/messages", json=message(), headers=ACME)).status_code == 202
    refused = await client.post("/v1/messages/batch", json={"messages": batch["messages"][:2]}, headers=ACME)
    body = await problem_of(refused, 429)
    assert body["code"] == "rate_limited" and "10 messages" in body["detail"]
    assert int(refused.headers["Retry-After"]) >= 360  # one message per 6 minutes, and 2 asked
    assert (await client.post("/v1/messages", json=message(), headers=ACME)).status_code == 202  # the last one
    await problem_of(await client.post("/v1/messages", json=message(), headers=ACME), 429)
    other = await client.post("/v1/messages", json=message(tenant_id="acme-labs"), headers=ACME)
    assert other.status_code == 202  # every tenant has its own count
    searched = await client.get("/v1/memory/search?tenant_id=acme&query=note", headers=ACME)
    assert searched.status_code == 200  # reads are not messages written


def test_a_limit_smaller_than_a_full_batch_is_refused_at_start():
    with pytest.raises(ValidationError, match="MEMORY_MAX_BATCH_MESSAGES"):
        Settings(_env_file=None, tenant_message_rate_limit="100/minute", max_batch_messages=500)
