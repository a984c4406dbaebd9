"""What every UserMessages promises: a user's messages of one tenant, in time order, and their ids."""

import itertools
from datetime import UTC, datetime, timedelta

from application.ports.messages import Position
from tests.support import make, tenant

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


async def test_a_users_messages_come_oldest_first_across_conversations_a_page_at_a_time(backend):
    t, other = tenant(), tenant()
    mine = [
        make(t, f"m{i}", user_id="alice", conversation_id=f"c{i % 3}", created_at=NOW + timedelta(minutes=i % 4))
        for i in range(7)
    ]
    archived = make(t, "old", user_id="alice", created_at=NOW - timedelta(days=1), archived_at=NOW)
    for message in [*mine, archived, make(t, "bob's", user_id="bob"), make(t, "nobody's")]:
        await backend.messages.add(message)
    await backend.messages.add(make(other, "the other tenant's alice", user_id="alice"))
    expected = sorted(mine, key=lambda m: (m.created_at, m.id))

    pages, after = [], None
    for _ in itertools.count():
        page = await backend.users.page(t, "alice", after, 3, False)
        if not page:
            break
        pages.append(page)
        after = Position(page[-1].created_at, page[-1].id)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [m for p in pages for m in p] == expected
    assert await backend.users.page(t, "alice", None, 50, True) == [archived, *expected]
    assert await backend.users.page(t, "carol", None, 50, True) == []


async def test_message_ids_are_the_users_in_the_tenant_up_to_the_limit(backend):
    t, other = tenant(), tenant()
    mine = [make(t, user_id="alice", archived_at=NOW if i == 0 else None) for i in range(3)]
    for message in [*mine, make(t, user_id="bob"), make(t), make(other, user_id="alice")]:
        await backend.messages.add(message)

    assert sorted(await backend.users.message_ids(t, "alice", 10)) == sorted(m.id for m in mine)
    assert len(await backend.users.message_ids(t, "alice", 2)) == 2
    assert await backend.users.message_ids(t, "carol", 10) == []
