"""MessageRepository.latest_turns, asserted identically for each adapter: the recent window of
a context (POST /v1/context)."""

from datetime import UTC, datetime, timedelta

from tests.support import make, tenant

START = datetime(2026, 1, 1, tzinfo=UTC)


async def test_the_latest_turns_oldest_first_with_ties_by_id_and_nothing_archived(backend):
    t = tenant()
    turns = [make(t, f"m{i}", created_at=START + timedelta(minutes=i)) for i in range(5)]
    tied = [make(t, f"tie {i}", created_at=START + timedelta(minutes=10)) for i in range(2)]
    archived = make(t, "archived", created_at=START + timedelta(minutes=20), archived_at=START)
    elsewhere = [make(t, "other conversation", conversation_id="c2"), make(tenant(), "other tenant")]
    for message in [*turns, *tied, archived, *elsewhere]:
        await backend.messages.add(message)
    everything = sorted([*turns, *tied], key=lambda m: (m.created_at, m.id))

    assert [m.id for m in await backend.messages.latest_turns(t, "c1", 3)] == [m.id for m in everything[-3:]]
    assert [m.id for m in await backend.messages.latest_turns(t, "c1", 100)] == [m.id for m in everything]
    assert await backend.messages.latest_turns(t, "no-such-conversation", 3) == []
    assert await backend.messages.latest_turns(tenant(), "c1", 3) == []
