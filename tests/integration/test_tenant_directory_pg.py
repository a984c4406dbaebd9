"""The console's listings on the real PostgreSQL: the skip-scans answer the pages a plain
GROUP BY would, and read in proportion to the page, not to the messages stored."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from adapters.postgres.directory import CONVERSATIONS, TENANTS, PgTenantDirectory
from adapters.postgres.messages import PgMessageRepository
from application.ports.directory import ConversationSummary
from tests.support import make, tenant

NOW = datetime(2026, 6, 1, tzinfo=UTC)
# Every character the id rule allows besides letters and digits, upper and lower case, and a
# digit first: orders that differ between collations, which the walk must follow whatever they are.
ODD_IDS = ["a.b", "a_b", "a:b", "a@b", "a-b", "A-B", "ab", "9z", "Z", "a" * 128, "a.b.c@x:y_z-0"]


async def walk(read, limit: int) -> list:
    """Every entry across pages of `limit`, each page after the last entry of the one before."""
    seen: list = []
    after = None
    for _ in range(1000):
        page = await read(after, limit)
        assert len(page) <= limit
        seen += page
        if len(page) < limit:
            return seen
        last = page[-1]
        after = last if isinstance(last, str) else last.conversation_id
    pytest.fail("the walk did not end")


async def test_no_messages_no_tenants(empty_database):
    directory = PgTenantDirectory(empty_database)
    assert await directory.tenants(None, 100) == []
    assert await directory.tenants("a", 100) == []
    assert await directory.conversations("acme", None, 100) == []


async def test_every_tenant_once_in_the_databases_order_across_pages(empty_database):
    repository = PgMessageRepository(empty_database)
    await repository.add_many([make(t, f"m{i}", conversation_id=f"c{i}") for t in ODD_IDS for i in range(3)])
    expected = [
        r["tenant_id"]
        for r in await empty_database.pool.fetch("SELECT DISTINCT tenant_id FROM messages ORDER BY tenant_id")
    ]
    assert sorted(expected) == sorted(ODD_IDS)

    directory = PgTenantDirectory(empty_database)
    for limit in (1, 2, 5, len(ODD_IDS), len(ODD_IDS) + 1):
        assert await walk(directory.tenants, limit) == expected, limit
    assert await directory.tenants(expected[-1], 10) == []
    assert await directory.tenants(expected[2], 2) == expected[3:5]


async def test_conversations_carry_counts_archived_included_and_their_span(database):
    t, other = tenant(), tenant()
    messages = [
        make(t, "first", conversation_id="a.b", created_at=NOW),
        make(t, "archived", conversation_id="a.b", created_at=NOW + timedelta(hours=3), archived_at=NOW),
        make(t, "middle", conversation_id="a.b", created_at=NOW + timedelta(hours=1)),
        make(t, "all archived", conversation_id="a_b", created_at=NOW - timedelta(days=2), archived_at=NOW),
        make(t, "alone", conversation_id="Z", created_at=NOW + timedelta(days=1)),
        make(other, "elsewhere", conversation_id="a.b", created_at=NOW - timedelta(days=30)),
    ]
    await PgMessageRepository(database).add_many(messages)

    found = {c.conversation_id: c for c in await PgTenantDirectory(database).conversations(t, None, 100)}

    assert found == {
        "a.b": ConversationSummary("a.b", 3, 1, NOW, NOW + timedelta(hours=3)),
        "a_b": ConversationSummary("a_b", 1, 1, NOW - timedelta(days=2), NOW - timedelta(days=2)),
        "Z": ConversationSummary("Z", 1, 0, NOW + timedelta(days=1), NOW + timedelta(days=1)),
    }
    assert all(c.first_at.tzinfo is not None for c in found.values())


async def test_conversations_page_over_each_exactly_once_and_agree_with_group_by(database):
    t = tenant()
    await PgMessageRepository(database).add_many(
        [
            make(
                t,
                f"{c} {j}",
                conversation_id=c,
                created_at=NOW + timedelta(minutes=j),
                archived_at=NOW if j % 3 == 0 else None,
            )
            for c in ODD_IDS
            for j in range(len(c) % 4 + 1)
        ]
    )
    rows = await database.pool.fetch(
        "SELECT conversation_id, count(*) AS messages, count(archived_at) AS archived, "
        "min(created_at) AS first_at, max(created_at) AS last_at "
        "FROM messages WHERE tenant_id = $1 GROUP BY conversation_id ORDER BY conversation_id",
        t,
    )
    expected = [ConversationSummary(**dict(r)) for r in rows]
    directory = PgTenantDirectory(database)

    async def read(after, limit):
        return await directory.conversations(t, after, limit)

    for limit in (1, 3, len(ODD_IDS), len(ODD_IDS) + 1):
        assert await walk(read, limit) == expected, limit


async def plan(database, sql: str, *args) -> dict:
    raw = await database.pool.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def rows_read(root: dict) -> int:
    """Rows the scans of a plan produced, over all their loops: what the statement read."""
    return sum(int(n.get("Actual Rows", 0) * n.get("Actual Loops", 1)) for n in nodes(root) if "Scan" in n["Node Type"])


async def test_the_skip_scans_read_a_page_not_the_table(empty_database):
    """20,000 messages in 4 tenants: listing the tenants reads about one index entry per tenant,
    and a page of 2 conversations of 200 reads those two conversations' rows, not the other 198's."""
    repository = PgMessageRepository(empty_database)
    for t in ("t1", "t2", "t3", "t4"):
        for start in range(0, 5000, 2500):
            await repository.add_many(
                [make(t, "x", conversation_id=f"c{i % 200:03d}", created_at=NOW) for i in range(start, start + 2500)]
            )
    await empty_database.pool.execute("ANALYZE messages")

    tenants = await plan(empty_database, TENANTS, "", 100)
    scans = [n for n in nodes(tenants) if "Scan" in n["Node Type"] and n.get("Relation Name") == "messages"]
    assert scans and all(n["Node Type"] in ("Index Only Scan", "Index Scan") for n in scans), scans
    assert rows_read(tenants) <= 20, rows_read(tenants)
    distinct = await plan(empty_database, "SELECT DISTINCT tenant_id FROM messages ORDER BY tenant_id")
    assert rows_read(distinct) >= 20_000  # what the walk is measured against: it reads every row

    conversations = await plan(empty_database, CONVERSATIONS, "t2", "c100", 2)
    assert not [n for n in nodes(conversations) if n["Node Type"] == "Seq Scan"]
    # The 2 ids take about 3 descents; their figures read their 25 + 25 messages.
    assert rows_read(conversations) <= 2 * 25 * 2 + 20, rows_read(conversations)
    assert [c.conversation_id for c in await PgTenantDirectory(empty_database).conversations("t2", "c100", 2)] == [
        "c101",
        "c102",
    ]
