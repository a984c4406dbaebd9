"""What every MessageRepository promises, asserted identically for each adapter."""

import uuid
from datetime import UTC, datetime

from domain.message import EmbeddingStatus, Message, Role


def make(tenant: str, content: str = "hello", **fields) -> Message:
    message = Message(
        id=fields.pop("id", uuid.uuid4()),
        tenant_id=tenant,
        conversation_id=fields.pop("conversation_id", "c1"),
        role=fields.pop("role", Role.USER),
        content=content,
        metadata=fields.pop("metadata", {}),
        created_at=fields.pop("created_at", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        importance=fields.pop("importance", 0.5),
        explicit_importance=fields.pop("explicit_importance", None),
        embedding_status=fields.pop("embedding_status", EmbeddingStatus.PENDING),
        client_message_id=fields.pop("client_message_id", None),
        pinned=fields.pop("pinned", False),
        archived_at=fields.pop("archived_at", None),
    )
    assert not fields, f"make() does not know {sorted(fields)}"
    return message


def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def test_a_message_round_trips_with_every_field(backend):
    message = make(
        tenant(),
        "Ünïcödé ✓ 日本語 'quotes' \"double\" \\ back; DROP TABLE messages; --",
        metadata={"nested": {"list": [1, 2.5, None, True]}, "emoji": "🙂"},
        explicit_importance=0.75,
        importance=0.75,
        created_at=datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        role=Role.TOOL,
        pinned=True,
    )
    await backend.messages.add(message)
    assert await backend.messages.get(message.tenant_id, message.id) == message


async def test_get_and_get_many_stay_inside_the_tenant(backend):
    a, b = tenant(), tenant()
    mine, theirs = make(a), make(b)
    await backend.messages.add(mine)
    await backend.messages.add(theirs)

    assert await backend.messages.get(a, theirs.id) is None
    assert await backend.messages.get(a, uuid.uuid4()) is None
    assert await backend.messages.get_many(a, [mine.id, theirs.id, uuid.uuid4()]) == [mine]
    assert await backend.messages.get_many(a, []) == []


async def test_mark_embedded_changes_only_that_tenants_rows(backend):
    a, b = tenant(), tenant()
    mine, theirs = make(a), make(b)
    await backend.messages.add(mine)
    await backend.messages.add(theirs)

    await backend.queue.mark_embedded(a, [mine.id, theirs.id])

    assert (await backend.messages.get(a, mine.id)).embedding_status is EmbeddingStatus.EMBEDDED
    assert (await backend.messages.get(b, theirs.id)).embedding_status is EmbeddingStatus.PENDING


async def test_check_answers_when_the_store_is_up(backend):
    assert await backend.messages.check() is None
