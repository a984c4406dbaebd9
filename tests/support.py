"""Helpers the test suites share."""

import uuid
from datetime import UTC, datetime

from adapters.inprocess.job_queue import InProcessJobQueue
from application.store_messages import EmbeddingMode, StoreMessages, StoreSettings
from domain.message import ContentLimits, EmbeddingStatus, Message, Role
from tests.fakes.metrics import InMemoryMetrics


def inline_store(repository, index, embedder, transactions, clock, limits=None):
    """`await store(principal, command)` stores one message inline and returns it as stored."""
    use_case = StoreMessages(
        repository,
        index,
        embedder,
        transactions,
        InProcessJobQueue(),
        clock,
        StoreSettings(EmbeddingMode.INLINE, limits or ContentLimits()),
        InMemoryMetrics(),
    )

    async def store(principal, command):
        return (await use_case.one(principal, command)).message

    return store


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
        user_id=fields.pop("user_id", None),
    )
    assert not fields, f"make() does not know {sorted(fields)}"
    return message


def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"
