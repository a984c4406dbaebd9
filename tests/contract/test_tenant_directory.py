"""What every TenantDirectory promises, asserted identically for each adapter: the tenants and
conversations in id order, after a given id, a page at a time, with each conversation's figures."""

from datetime import UTC, datetime, timedelta

from application.ports.directory import ConversationSummary
from tests.support import make, tenant

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


async def test_tenants_come_once_each_in_order_after_the_id_given(queue_backend):
    directory = queue_backend.directory
    assert await directory.tenants(None, 10) == []
    await queue_backend.messages.add_many([make(t, conversation_id=c) for t in ("b", "a", "c-1") for c in ("x", "y")])

    assert await directory.tenants(None, 10) == ["a", "b", "c-1"]
    assert await directory.tenants(None, 2) == ["a", "b"]
    assert await directory.tenants("a", 10) == ["b", "c-1"]
    assert await directory.tenants("aa", 10) == ["b", "c-1"]  # after an id no tenant has
    assert await directory.tenants("c-1", 10) == []


async def test_a_tenants_conversations_with_their_counts_and_span(backend):
    t = tenant()
    await backend.messages.add_many(
        [
            make(t, "1", conversation_id="b", created_at=NOW),
            make(t, "2", conversation_id="b", created_at=NOW - timedelta(days=1), archived_at=NOW),
            make(t, "3", conversation_id="a", created_at=NOW + timedelta(hours=1)),
            make(t, "4", conversation_id="c", created_at=NOW, archived_at=NOW),
            make(tenant(), "elsewhere", conversation_id="a"),
        ]
    )
    directory = backend.directory

    assert await directory.conversations(t, None, 10) == [
        ConversationSummary("a", 1, 0, NOW + timedelta(hours=1), NOW + timedelta(hours=1)),
        ConversationSummary("b", 2, 1, NOW - timedelta(days=1), NOW),
        ConversationSummary("c", 1, 1, NOW, NOW),
    ]
    assert [c.conversation_id for c in await directory.conversations(t, "a", 1)] == ["b"]
    assert await directory.conversations(t, "c", 10) == []
    assert await directory.conversations(tenant(), None, 10) == []
