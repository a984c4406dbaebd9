"""What every MessageRepository promises, asserted identically for each adapter: the system of
record's reads and writes, idempotent adds, update, delete, archive, restore and conversation pages."""

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from application.ports.messages import Order, Position
from domain.message import EmbeddingStatus, Role
from tests.support import make, tenant

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
LEASE = timedelta(minutes=1)


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
        user_id="alice@example.com",
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


async def test_add_many_keeps_order_and_stores_a_client_id_once_per_tenant(queue_backend):
    messages = queue_backend.messages
    a, b = tenant(), tenant()
    first = make(a, "one", client_message_id="msg-1")
    plain = make(a, "two")
    again = make(a, "one", client_message_id="msg-1")
    other_tenant = make(b, "one", client_message_id="msg-1")

    assert await messages.add_many([first, plain]) == [first, plain]
    stored = await messages.add_many([again, other_tenant, make(a, "dup", client_message_id="msg-1")])

    assert [m.id for m in stored] == [first.id, other_tenant.id, first.id]
    assert await messages.get(a, again.id) is None
    assert (await messages.get(b, other_tenant.id)).client_message_id == "msg-1"


async def test_a_batch_repeating_a_client_id_stores_it_once(queue_backend):
    t = tenant()
    one, two = make(t, "x", client_message_id="same"), make(t, "x", client_message_id="same")
    stored = await queue_backend.messages.add_many([one, two])
    assert [m.id for m in stored] == [one.id, one.id]
    assert await queue_backend.messages.get(t, two.id) is None


async def test_update_writes_the_changed_fields_and_nothing_of_another_tenant(backend):
    t = tenant()
    original = make(t, "first", metadata={"a": 1}, embedding_status=EmbeddingStatus.EMBEDDED)
    await backend.messages.add(original)
    changed = replace(original, metadata={"b": 2}, importance=0.9, explicit_importance=0.9, pinned=True)

    assert await backend.messages.update(changed, reembed=False) == changed
    assert await backend.messages.get(t, original.id) == changed
    assert await backend.messages.update(replace(changed, tenant_id=tenant()), reembed=False) is None
    assert await backend.messages.update(make(t), reembed=False) is None  # never stored


async def test_reembedding_voids_a_claim_so_the_old_text_cannot_complete(queue_backend):
    t = tenant()
    message = make(t, "old text")
    await queue_backend.messages.add(message)
    claim = await queue_backend.queue.claim_pending(10, LEASE)
    assert claim is not None and [c.message.id for c in claim.messages] == [message.id]

    await queue_backend.messages.update(replace(message, content="new text"), reembed=True)

    assert await queue_backend.queue.complete_embedding(claim.id, [message.id]) == []
    again = await queue_backend.queue.claim_pending(10, LEASE)  # claimable at once, with fresh tries
    assert again is not None
    assert [(c.message.content, c.attempts) for c in again.messages] == [("new text", 1)]


async def test_delete_removes_only_the_tenants_rows_and_says_which(backend):
    t, other = tenant(), tenant()
    gone, kept, theirs = make(t), make(t), make(other)
    for message in (gone, kept, theirs):
        await backend.messages.add(message)

    assert await backend.messages.delete(t, [gone.id, theirs.id, uuid.uuid4()]) == [gone.id]
    assert await backend.messages.delete(t, [gone.id]) == []
    assert await backend.messages.get(t, gone.id) is None
    assert await backend.messages.get(t, kept.id) == kept
    assert await backend.messages.get(other, theirs.id) == theirs


async def test_archive_and_restore_act_once_and_inside_the_tenant(backend):
    t, other = tenant(), tenant()
    mine, theirs = make(t), make(other)
    await backend.messages.add(mine)
    await backend.messages.add(theirs)

    assert await backend.messages.archive(t, [mine.id, theirs.id], NOW) == [mine.id]
    assert await backend.messages.archive(t, [mine.id], NOW + timedelta(days=1)) == []
    assert (await backend.messages.get(t, mine.id)).archived_at == NOW
    assert (await backend.messages.get(other, theirs.id)).archived_at is None

    later = NOW + timedelta(days=2)
    assert await backend.messages.restore(t, [mine.id], later) == [mine.id]
    assert await backend.messages.restore(t, [mine.id], later) == []
    restored = await backend.messages.get(t, mine.id)
    assert (restored.archived_at, restored.restored_at) == (None, later)


async def test_a_conversation_pages_in_time_order_with_ties_by_id(backend):
    t = tenant()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    same_moment = [make(t, f"tie {i}", created_at=start + timedelta(hours=1)) for i in range(3)]
    others = [make(t, f"m{i}", created_at=start + timedelta(hours=h)) for i, h in enumerate((0, 2, 3))]
    archived = make(t, "archived", created_at=start + timedelta(hours=4), archived_at=NOW)
    for message in [*same_moment, *others, archived, make(t, conversation_id="c2"), make(tenant())]:
        await backend.messages.add(message)
    expected = sorted([*same_moment, *others], key=lambda m: (m.created_at, m.id))

    pages, after = [], None
    while page := await backend.messages.conversation_page(t, "c1", after, 2, False):
        pages.append([m.id for m in page])
        after = Position(page[-1].created_at, page[-1].id)

    assert list(itertools.chain(*pages)) == [m.id for m in expected]
    assert [len(p) for p in pages] == [2, 2, 2]
    with_archived = await backend.messages.conversation_page(t, "c1", None, 100, True)
    assert [m.id for m in with_archived] == [m.id for m in expected] + [archived.id]


async def test_a_conversation_pages_newest_first_with_ties_by_id_descending(backend):
    t = tenant()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    same_moment = [make(t, f"tie {i}", created_at=start + timedelta(hours=1)) for i in range(3)]
    others = [make(t, f"m{i}", created_at=start + timedelta(hours=h)) for i, h in enumerate((0, 2, 3))]
    archived = make(t, "archived", created_at=start + timedelta(hours=4), archived_at=NOW)
    for message in [*same_moment, *others, archived, make(t, conversation_id="c2"), make(tenant())]:
        await backend.messages.add(message)
    expected = sorted([*same_moment, *others], key=lambda m: (m.created_at, m.id), reverse=True)

    pages, after = [], None
    while page := await backend.messages.conversation_page(t, "c1", after, 2, False, Order.NEWEST):
        pages.append([m.id for m in page])
        after = Position(page[-1].created_at, page[-1].id)

    assert list(itertools.chain(*pages)) == [m.id for m in expected]
    assert [len(p) for p in pages] == [2, 2, 2]
    with_archived = await backend.messages.conversation_page(t, "c1", None, 100, True, Order.NEWEST)
    assert [m.id for m in with_archived] == [archived.id] + [m.id for m in expected]
    # A position handed out going oldest first goes on from the same message the other way.
    middle = expected[3]
    back = await backend.messages.conversation_page(
        t, "c1", Position(middle.created_at, middle.id), 100, False, Order.NEWEST
    )
    assert [m.id for m in back] == [m.id for m in expected[4:]]


async def test_check_answers_when_the_store_is_up(backend):
    assert await backend.messages.check() is None


async def test_update_sets_changes_and_clears_the_user(backend):
    t = tenant()
    message = make(t)
    await backend.messages.add(message)
    assert (await backend.messages.get(t, message.id)).user_id is None

    for user_id in ("alice", "bob", None):
        updated = await backend.messages.update(replace(message, user_id=user_id), reembed=False)
        assert updated.user_id == user_id
        assert (await backend.messages.get(t, message.id)).user_id == user_id
