"""A retry under the same client_message_id is a replay only when it is the same message:
same conversation, role, content, metadata (as JSON: 7 is 7.0), importance, pinned, and
created_at when the retry gives one. Anything else is a conflict that stores nothing new."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given

from adapters.inprocess.job_queue import InProcessJobQueue
from application.errors import IdempotencyConflict
from application.store_messages import EmbeddingMode, StoreMessageCommand, StoreMessages, StoreSettings
from domain.access import Principal
from domain.message import EmbeddingStatus, Message, NewMessage, same_json
from tests.fakes.metrics import InMemoryMetrics
from tests.json_strategies import json_objects, retyped

ACME = Principal(key_id="k1", tenants=frozenset({"acme"}))
WHEN = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
FIRST: dict[str, Any] = {
    "tenant_id": "acme",
    "conversation_id": "c1",
    "role": "user",
    "content": "Book the table for four",
    "metadata": {"amount": 100.0, "tags": ["dinner"]},
    "importance": 0.7,
    "created_at": WHEN,
    "client_message_id": "turn-1",
    "pinned": True,
}


@pytest.fixture
def store(repository, index, embedder, transactions, clock) -> StoreMessages:
    settings = StoreSettings(EmbeddingMode.ASYNC)
    return StoreMessages(
        repository, index, embedder, transactions, InProcessJobQueue(), clock, settings, InMemoryMetrics()
    )


async def test_the_same_message_sent_again_is_a_replay_however_its_json_and_offset_are_written(store, table):
    first = await store.one(ACME, StoreMessageCommand(**FIRST))
    same = {
        **FIRST,
        "metadata": {"tags": ["dinner"], "amount": 100},
        "importance": 0.7,
        "created_at": WHEN.astimezone(timezone(timedelta(hours=2))),
    }
    again = await store.one(ACME, StoreMessageCommand(**same))
    without_time = await store.one(ACME, StoreMessageCommand(**{**FIRST, "created_at": None}))

    assert again.replayed and without_time.replayed
    assert again.message.id == without_time.message.id == first.message.id
    assert len(table.rows) == 1


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        ({"conversation_id": "c2"}, "conversation_id"),
        ({"role": "assistant"}, "role"),
        ({"content": "Book the table for five"}, "content"),
        ({"metadata": {"amount": 101, "tags": ["dinner"]}}, "metadata"),
        ({"metadata": {"amount": 100.0}}, "metadata"),
        ({"metadata": None}, "metadata"),
        ({"importance": 0.8}, "importance"),
        ({"importance": None}, "importance"),
        ({"pinned": False}, "pinned"),
        ({"created_at": WHEN + timedelta(microseconds=1)}, "created_at"),
    ],
)
async def test_a_retry_that_differs_is_a_conflict_naming_what_differs_and_keeps_the_first(store, table, changed, named):
    first = await store.one(ACME, StoreMessageCommand(**FIRST))
    with pytest.raises(IdempotencyConflict) as conflict:
        await store.one(ACME, StoreMessageCommand(**{**FIRST, **changed}))

    assert f"differing in {named})" in conflict.value.detail and "turn-1" in conflict.value.detail
    (kept,) = table.rows.values()
    assert kept == first.message


def stored_as(new: NewMessage) -> Message:
    return Message(
        id=uuid.uuid4(),
        tenant_id=new.tenant_id,
        conversation_id=new.conversation_id,
        role=new.role,
        content=new.content,
        metadata=new.metadata,
        created_at=new.created_at or WHEN,
        importance=new.explicit_importance or 0.5,
        explicit_importance=new.explicit_importance,
        embedding_status=EmbeddingStatus.PENDING,
        client_message_id=new.client_message_id,
        pinned=new.pinned,
    )


@given(json_objects, json_objects)
def test_metadata_decides_a_replay_as_json_equality(first: dict[str, Any], retry: dict[str, Any]) -> None:
    new = NewMessage.parse(tenant_id="acme", conversation_id="c1", role="user", content="hi", metadata=first)
    stored = stored_as(new)
    assert replace(new, metadata=retyped(first)).differences(stored) == []
    expected = [] if same_json(first, retry) else ["metadata"]
    assert replace(new, metadata=retry).differences(stored) == expected
