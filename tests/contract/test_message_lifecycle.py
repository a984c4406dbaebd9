"""What every MessageRepository promises for the lifecycle: update, delete, archive, restore,
conversation pages, and the messages a retention policy may act on."""

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from application.ports.messages import Position
from domain.message import EmbeddingStatus, Role
from domain.retention import RetentionAction, RetentionFacts, RetentionPolicy, decide
from tests.contract.test_message_repository import make, tenant

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
LEASE = timedelta(minutes=1)


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


async def test_message_ids_are_bounded_and_scoped(backend):
    t = tenant()
    for i in range(5):
        await backend.messages.add(make(t, conversation_id="a" if i < 3 else "b"))
    await backend.messages.add(make(tenant()))
    assert len(await backend.catalog.message_ids(t, None, 4)) == 4
    assert len(await backend.catalog.message_ids(t, None, 100)) == 5
    assert len(await backend.catalog.message_ids(t, "a", 100)) == 3


def varied_messages(t: str) -> list:
    """Every combination the rule distinguishes: age, importance, pinned, role, archived, restored."""
    messages = []
    for age, importance, pinned, explicit, role, archived, restored in itertools.product(
        (5, 45, 120),
        (0.1, 0.5),
        (False, True),
        (None, 1.0),
        (Role.USER, Role.SYSTEM),
        (False, True),
        (None, 2, 60),
    ):
        messages.append(
            make(
                t,
                created_at=NOW - timedelta(days=age),
                importance=importance if explicit is None else explicit,
                explicit_importance=explicit,
                pinned=pinned,
                role=role,
                archived_at=NOW - timedelta(days=1) if archived else None,
            )
        )
        messages[-1] = replace(messages[-1], restored_at=None if restored is None else NOW - timedelta(days=restored))
    return messages


async def test_retention_candidates_are_what_the_rule_acts_on_page_by_page(backend):
    t = tenant()
    policy = RetentionPolicy(
        archive_after_days=30, delete_after_days=90, importance_threshold=0.35, protected_roles=frozenset({Role.SYSTEM})
    )
    messages = varied_messages(t)
    for message in messages:
        await backend.messages.add(message)
        if message.restored_at is not None:  # restored_at is written by a restore, not by add
            await backend.messages.archive(t, [message.id], NOW)
            await backend.messages.restore(t, [message.id], message.restored_at)
            if message.archived_at is not None:
                await backend.messages.archive(t, [message.id], message.archived_at)
    stored = [await backend.messages.get(t, m.id) for m in messages]
    acted_on = {m.id for m in stored if decide(policy, RetentionFacts.of(m), NOW).action != RetentionAction.KEEP}
    assert acted_on  # the table holds messages to archive and to delete
    assert {decide(policy, RetentionFacts.of(m), NOW).action for m in stored} == set(RetentionAction)

    seen, after = [], None
    while page := await backend.retention.retention_candidates(t, policy, NOW, after, 7):
        seen += page
        after = Position(page[-1].created_at, page[-1].message_id)

    assert [f.message_id for f in seen] == [
        f.message_id for f in sorted(seen, key=lambda f: (f.created_at, f.message_id))
    ]
    assert {f.message_id for f in seen} == acted_on
    assert await backend.retention.count_retention_candidates(t, policy, NOW) == len(acted_on)
    assert await backend.retention.retention_candidates(tenant(), policy, NOW, None, 7) == []


async def test_a_policy_that_never_acts_has_no_candidates(backend):
    t = tenant()
    await backend.messages.add(make(t, created_at=NOW - timedelta(days=5000), importance=0.0))
    never = RetentionPolicy(archive_after_days=None, delete_after_days=None)
    assert await backend.retention.retention_candidates(t, never, NOW, None, 10) == []
    assert await backend.retention.count_retention_candidates(t, never, NOW) == 0


async def test_keyword_search_finds_any_shared_word_inside_the_tenant(backend):
    from application.ports.filters import SearchFilters

    t, other = tenant(), tenant()
    both = make(t, "the green kettle boils water", metadata={"room": "kitchen"})
    one = make(t, "a kettle on the stove", metadata={"room": "garden"})
    none = make(t, "flights to Lisbon")
    archived = make(t, "kettle in the archive", archived_at=NOW)
    theirs = make(other, "green kettle")
    for message in (both, one, none, archived, theirs):
        await backend.messages.add(message)

    hits = await backend.text_search.keyword_search(t, "green kettle", 10, SearchFilters())
    assert [h.message_id for h in hits] == [both.id, one.id]  # more shared words first
    assert hits[0].rank > hits[1].rank > 0
    only_garden = await backend.text_search.keyword_search(t, "kettle", 10, SearchFilters(metadata={"room": "garden"}))
    assert [h.message_id for h in only_garden] == [one.id]
    assert await backend.text_search.keyword_search(t, "the of and", 10, SearchFilters()) == []
    assert await backend.text_search.keyword_search(t, "kettle & !green | :* ' \\ (", 10, SearchFilters())


async def test_keyword_search_matches_the_words_of_the_date_in_utc(backend):
    from application.ports.filters import SearchFilters

    t = tenant()
    late = make(t, "we moved house", created_at=datetime(2024, 3, 8, 23, 30, tzinfo=timezone(timedelta(hours=-2))))
    may = make(t, "we painted the fence", created_at=datetime(2024, 5, 20, 12, tzinfo=UTC))
    for message in (late, may):
        await backend.messages.add(message)

    async def found(query: str) -> list[uuid.UUID]:
        return [h.message_id for h in await backend.text_search.keyword_search(t, query, 10, SearchFilters())]

    assert await found("what happened in March") == [late.id]
    assert await found("9") == [late.id]  # 9 March in UTC, though 8 March where it was written
    assert await found("8") == []
    assert set(await found("2024")) == {late.id, may.id}


async def test_adjacent_gives_the_live_messages_just_before_and_after_in_the_conversation(backend):
    t, other = tenant(), tenant()
    at = [NOW + timedelta(minutes=i) for i in range(5)]
    first, archived, middle, last = (
        make(t, "first", created_at=at[0]),
        make(t, "archived", created_at=at[1], archived_at=NOW),
        make(t, "middle", created_at=at[2]),
        make(t, "last", created_at=at[3]),
    )
    twin = make(t, "same instant as last", created_at=at[3])  # ties: the id decides, as in conversation pages
    elsewhere = make(t, "another conversation", conversation_id="c2", created_at=at[1])
    theirs = make(other, "their message", created_at=at[1])
    for message in (first, archived, middle, last, twin, elsewhere, theirs):
        await backend.messages.add(message)
    after_middle, after_both = sorted([last, twin], key=lambda m: m.id)

    found = await backend.text_search.adjacent(t, [first.id, middle.id, after_both.id, elsewhere.id, theirs.id])
    assert found == {
        first.id: [middle.id],  # the archived one between is skipped
        middle.id: [first.id, after_middle.id],
        after_both.id: [after_middle.id],
        elsewhere.id: [],
    }  # another tenant's id finds nothing
    assert await backend.text_search.adjacent(t, []) == {}
