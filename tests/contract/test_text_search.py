"""What every TextSearch promises: keyword search inside a tenant, and a message's neighbours."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

from application.ports.filters import SearchFilters
from tests.support import make, tenant

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


async def test_keyword_search_finds_any_shared_word_inside_the_tenant(backend):

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
    assert found[middle.id] == [first, after_middle]  # whole messages, as stored
    assert {lender: [m.id for m in neighbours] for lender, neighbours in found.items()} == {
        first.id: [middle.id],  # the archived one between is skipped
        middle.id: [first.id, after_middle.id],
        after_both.id: [after_middle.id],
        elsewhere.id: [],
    }  # another tenant's id finds nothing
    assert await backend.text_search.adjacent(t, []) == {}


async def test_keyword_search_filters_by_user_inside_the_tenant(backend):
    t, other = tenant(), tenant()
    alice = make(t, "kettle for alice", user_id="alice")
    for message in (alice, make(t, "kettle for bob", user_id="bob"), make(t, "kettle for nobody")):
        await backend.messages.add(message)
    await backend.messages.add(make(other, "kettle of the other alice", user_id="alice"))

    hits = await backend.text_search.keyword_search(t, "kettle", 10, SearchFilters(user_id="alice"))
    assert [h.message_id for h in hits] == [alice.id]
    assert await backend.text_search.keyword_search(t, "kettle", 10, SearchFilters(user_id="carol")) == []
