"""What every VectorIndex promises, asserted identically for each adapter.

A vector is upserted for a stored message and the message then marked embedded, as
the store use case does.
"""

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from application.ports.filters import SearchFilters
from application.ports.vectors import VectorRecord
from domain.message import Role
from tests.conftest import DIMENSIONS
from tests.support import make, tenant

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def vector(*weights: float) -> list[float]:
    """A unit vector with the given weights on the first axes."""
    values = list(weights) + [0.0] * (DIMENSIONS - len(weights))
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


async def put(backend, tenant_id: str, vec: list[float], **fields):
    message = make(tenant_id, **fields)
    await backend.messages.add(message)
    await backend.index.upsert(
        [
            VectorRecord(
                message.id,
                tenant_id,
                message.conversation_id,
                message.role,
                message.created_at,
                message.importance,
                vec,
                user_id=message.user_id,
            )
        ]
    )
    await backend.queue.mark_embedded(tenant_id, [message.id])
    return message


async def test_hits_come_back_most_similar_first_with_cosine_similarity(index_backend):
    t = tenant()
    exact = await put(index_backend, t, vector(1, 0))
    close = await put(index_backend, t, vector(1, 1))
    far = await put(index_backend, t, vector(0, 1))

    hits = await index_backend.index.search(t, vector(1, 0), 10, SearchFilters())

    assert [h.message_id for h in hits] == [exact.id, close.id, far.id]
    assert [h.similarity for h in hits] == pytest.approx([1.0, math.sqrt(0.5), 0.0], abs=1e-5)


async def test_k_bounds_the_hits_and_k_past_the_collection_returns_all(index_backend):
    t = tenant()
    stored = [await put(index_backend, t, vector(1, i / 10)) for i in range(4)]
    assert len(await index_backend.index.search(t, vector(1), 2, SearchFilters())) == 2
    assert {h.message_id for h in await index_backend.index.search(t, vector(1), 100, SearchFilters())} == {
        m.id for m in stored
    }


async def test_an_empty_tenant_has_no_hits(index_backend):
    assert await index_backend.index.search(tenant(), vector(1), 10, SearchFilters()) == []


async def test_another_tenants_vectors_never_come_back(index_backend):
    mine, theirs = tenant(), tenant()
    for _ in range(5):
        await put(index_backend, theirs, vector(1, 0))
    own = await put(index_backend, mine, vector(0, 1))

    hits = await index_backend.index.search(mine, vector(1, 0), 100, SearchFilters())

    assert [h.message_id for h in hits] == [own.id]


async def test_every_filter_is_applied(index_backend):
    t = tenant()
    a = await put(
        index_backend,
        t,
        vector(1),
        conversation_id="c1",
        role=Role.USER,
        importance=0.9,
        created_at=NOW - timedelta(days=1),
    )
    b = await put(
        index_backend,
        t,
        vector(1),
        conversation_id="c2",
        role=Role.ASSISTANT,
        importance=0.2,
        created_at=NOW - timedelta(days=5),
    )
    c = await put(
        index_backend,
        t,
        vector(1),
        conversation_id="c1",
        role=Role.ASSISTANT,
        importance=0.6,
        created_at=NOW - timedelta(days=20),
    )

    async def found(**filters) -> set:
        return {h.message_id for h in await index_backend.index.search(t, vector(1), 50, SearchFilters(**filters))}

    assert await found() == {a.id, b.id, c.id}
    assert await found(conversation_id="c1") == {a.id, c.id}
    assert await found(role=Role.ASSISTANT) == {b.id, c.id}
    assert await found(min_importance=0.6) == {a.id, c.id}
    assert await found(since=NOW - timedelta(days=10)) == {a.id, b.id}
    assert await found(until=NOW - timedelta(days=5)) == {b.id, c.id}
    assert await found(conversation_id="c1", role=Role.USER, since=NOW - timedelta(days=2)) == {a.id}
    assert await found(conversation_id="nope") == set()


async def test_upserting_again_replaces_the_vector(index_backend):
    t = tenant()
    message = await put(index_backend, t, vector(1, 0))
    await index_backend.index.upsert(
        [
            VectorRecord(
                message.id,
                t,
                message.conversation_id,
                message.role,
                message.created_at,
                message.importance,
                vector(0, 1),
            )
        ]
    )
    (hit,) = await index_backend.index.search(t, vector(0, 1), 5, SearchFilters())
    assert hit.message_id == message.id and hit.similarity == pytest.approx(1.0, abs=1e-5)


async def forget(backend, tenant_id: str, message_ids: list) -> int:
    """As the use cases delete messages: the index forgets the vectors, the repository the rows."""
    vectors = await backend.index.delete(tenant_id, message_ids)
    await backend.messages.delete(tenant_id, message_ids)
    return vectors


async def test_deleted_vectors_never_come_back_and_other_tenants_keep_theirs(index_backend):
    mine, theirs = tenant(), tenant()
    gone, kept = await put(index_backend, mine, vector(1, 0)), await put(index_backend, mine, vector(1, 1))
    other = await put(index_backend, theirs, vector(1, 0))

    # other's id, under the wrong tenant, is left alone and not counted
    assert await forget(index_backend, mine, [gone.id, other.id]) == 1

    assert [h.message_id for h in await index_backend.index.search(mine, vector(1, 0), 10, SearchFilters())] == [
        kept.id
    ]
    assert [h.message_id for h in await index_backend.index.search(theirs, vector(1, 0), 10, SearchFilters())] == [
        other.id
    ]


async def test_dropping_a_tenant_forgets_all_of_it_and_nothing_else(index_backend):
    dropped, other = tenant(), tenant()
    for i in range(3):
        await put(index_backend, dropped, vector(1, i))
    survivor = await put(index_backend, other, vector(1, 0))

    for message_id in await index_backend.catalog.message_ids(dropped, None, 100):
        await index_backend.messages.delete(dropped, [message_id])
    await index_backend.index.drop_tenant(dropped)

    assert await index_backend.index.search(dropped, vector(1, 0), 10, SearchFilters()) == []
    assert [h.message_id for h in await index_backend.index.search(other, vector(1, 0), 10, SearchFilters())] == [
        survivor.id
    ]


async def test_ties_come_back_in_a_stable_order(index_backend):
    t = tenant()
    same = [await put(index_backend, t, vector(1, 0)) for _ in range(4)]
    first = [h.message_id for h in await index_backend.index.search(t, vector(1, 0), 10, SearchFilters())]
    again = [h.message_id for h in await index_backend.index.search(t, vector(1, 0), 10, SearchFilters())]
    assert first == again == sorted((m.id for m in same), key=str)


async def test_ids_are_the_tenants_vectors(index_backend):
    t = tenant()
    kept, gone = await put(index_backend, t, vector(1, 0)), await put(index_backend, t, vector(0, 1))
    await put(index_backend, tenant(), vector(1, 0))
    await forget(index_backend, t, [gone.id])
    assert await index_backend.index.ids(t) == {kept.id}


async def test_archived_messages_are_not_searched_until_restored(index_backend):
    t = tenant()
    archived, live = await put(index_backend, t, vector(1, 0)), await put(index_backend, t, vector(1, 1))

    await index_backend.index.set_fields(t, [archived.id], archived=True)
    await index_backend.messages.archive(t, [archived.id], NOW)
    assert [h.message_id for h in await index_backend.index.search(t, vector(1, 0), 10, SearchFilters())] == [live.id]

    await index_backend.index.set_fields(t, [archived.id], archived=False)
    await index_backend.messages.restore(t, [archived.id], NOW)
    found = await index_backend.index.search(t, vector(1, 0), 10, SearchFilters())
    assert [h.message_id for h in found] == [archived.id, live.id]


async def test_archiving_another_tenants_id_changes_nothing(index_backend):
    mine, theirs = tenant(), tenant()
    other = await put(index_backend, theirs, vector(1, 0))
    await index_backend.index.set_fields(mine, [other.id], archived=True)
    await index_backend.messages.archive(mine, [other.id], NOW)
    assert [h.message_id for h in await index_backend.index.search(theirs, vector(1, 0), 5, SearchFilters())] == [
        other.id
    ]


async def test_the_user_filter_keeps_that_users_vectors_of_the_tenant(index_backend):
    t, other = tenant(), tenant()
    alice = await put(index_backend, t, vector(1, 0), user_id="alice")
    await put(index_backend, t, vector(1, 0), user_id="bob")
    await put(index_backend, t, vector(1, 0))
    await put(index_backend, other, vector(1, 0), user_id="alice")  # the same user id in another tenant

    found = await index_backend.index.search(t, vector(1, 0), 10, SearchFilters(user_id="alice"))
    assert [h.message_id for h in found] == [alice.id]
    assert await index_backend.index.search(t, vector(1, 0), 10, SearchFilters(user_id="carol")) == []


async def test_set_fields_changes_and_clears_the_user(index_backend):
    t = tenant()
    message = await put(index_backend, t, vector(1, 0), user_id="alice")

    async def of(user_id: str) -> list:
        return [
            h.message_id for h in await index_backend.index.search(t, vector(1, 0), 5, SearchFilters(user_id=user_id))
        ]

    async def set_user(user_id: str | None) -> None:  # as a PATCH does: the index, then the row
        await index_backend.index.set_fields(t, [message.id], user_id=user_id)
        stored = await index_backend.messages.get(t, message.id)
        await index_backend.messages.update(replace(stored, user_id=user_id), reembed=False)

    await set_user("bob")
    assert await of("alice") == []
    assert await of("bob") == [message.id]

    await index_backend.index.set_fields(t, [message.id], importance=0.9)  # other fields leave the user alone
    assert await of("bob") == [message.id]

    await set_user(None)
    assert await of("bob") == []
    assert [h.message_id for h in await index_backend.index.search(t, vector(1, 0), 5, SearchFilters())] == [message.id]
