"""The console's listings over the fakes: which tenants a key sees, conversations with their
figures, and keyset pages that cover every entry exactly once."""

from datetime import UTC, datetime, timedelta

import pytest

from application.browse_tenants import MAX_LISTING, BrowseTenants
from application.ports.directory import ConversationSummary
from domain.access import AccessDenied, Principal
from domain.errors import ValidationFailed
from tests.fakes.directory import InMemoryTenantDirectory
from tests.fakes.messages import InMemoryMessages, InMemoryMessageTable
from tests.support import make

ADMIN = Principal("admin", frozenset(), admin=True)
ACME = Principal("acme-key", frozenset({"acme", "acme-labs"}))
NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def table() -> InMemoryMessageTable:
    return InMemoryMessageTable()


@pytest.fixture
def browse(table: InMemoryMessageTable) -> BrowseTenants:
    return BrowseTenants(InMemoryTenantDirectory(table))


async def stored(table: InMemoryMessageTable, *messages) -> None:
    await InMemoryMessages(table).add_many(list(messages))


async def every_tenant(browse: BrowseTenants, principal: Principal, limit: int) -> list[str]:
    seen: list[str] = []
    after = None
    for _ in range(100):
        page = await browse.tenants(principal, after=after, limit=limit)
        assert len(page.tenants) <= limit
        seen += page.tenants
        if page.next_after is None:
            return seen
        assert page.next_after == page.tenants[-1]
        after = page.next_after
    pytest.fail("the walk did not end")


async def test_an_admin_sees_every_tenant_holding_a_message_once_across_pages(table, browse):
    tenants = [f"t{i:02d}" for i in range(7)]
    await stored(table, *(make(t, f"m{j}", conversation_id=f"c{j}") for t in tenants for j in range(3)))

    for limit in (1, 2, 3, 7, 8):
        assert await every_tenant(browse, ADMIN, limit) == tenants


async def test_a_full_last_page_says_no_more(table, browse):
    await stored(table, make("a"), make("b"))
    page = await browse.tenants(ADMIN, limit=2)
    assert page.tenants == ["a", "b"]
    assert page.next_after is None


async def test_a_tenant_key_sees_its_own_tenants_and_no_other(table, browse):
    await stored(table, make("acme"), make("globex"), make("initech"))

    assert await every_tenant(browse, ACME, 1) == ["acme", "acme-labs"]  # its scope, messages or not
    assert (await browse.tenants(ACME, after="acme")).tenants == ["acme-labs"]
    assert (await browse.tenants(ACME, after="acme-labs")).tenants == []


async def test_an_admin_with_no_messages_stored_sees_no_tenant(browse):
    page = await browse.tenants(ADMIN)
    assert page.tenants == [] and page.next_after is None


@pytest.mark.parametrize(
    ("after", "limit", "field"),
    [(None, 0, "limit"), (None, MAX_LISTING + 1, "limit"), ("a\x00b", 10, "after"), ("x" * 10_000, 10, "after")],
)
async def test_bad_paging_arguments_name_their_field(browse, after, limit, field):
    for listing in (
        browse.tenants(ACME, after=after, limit=limit),
        browse.conversations(ACME, "acme", after=after, limit=limit),
    ):
        with pytest.raises(ValidationFailed) as refused:
            await listing
        assert [p.field for p in refused.value.problems] == [field]


async def test_conversations_carry_their_counts_and_span_archived_included(table, browse):
    await stored(
        table,
        make("acme", "one", conversation_id="c1", created_at=NOW),
        make("acme", "two", conversation_id="c1", created_at=NOW + timedelta(hours=2), archived_at=NOW),
        make("acme", "three", conversation_id="c1", created_at=NOW + timedelta(hours=1)),
        make("acme", "solo", conversation_id="c2", created_at=NOW - timedelta(days=1)),
        make("globex", "theirs", conversation_id="c1", created_at=NOW - timedelta(days=9)),
    )

    listing = await browse.conversations(ACME, "acme")

    assert listing.conversations == [
        ConversationSummary("c1", 3, 1, NOW, NOW + timedelta(hours=2)),
        ConversationSummary("c2", 1, 0, NOW - timedelta(days=1), NOW - timedelta(days=1)),
    ]
    assert listing.next_after is None


async def test_conversations_page_over_every_one_exactly_once(table, browse):
    ids = [f"conv-{i:03d}" for i in range(11)]
    await stored(table, *(make("acme", f"{c} {j}", conversation_id=c) for c in ids for j in range(2)))

    for limit in (1, 3, 11, 12):
        seen: list[str] = []
        after = None
        while True:
            listing = await browse.conversations(ACME, "acme", after=after, limit=limit)
            seen += [c.conversation_id for c in listing.conversations]
            if listing.next_after is None:
                break
            after = listing.next_after
        assert seen == ids, limit


async def test_another_tenants_conversations_are_refused_before_any_read(table):
    class Watched(InMemoryTenantDirectory):
        reads = 0

        async def conversations(self, tenant_id, after, limit):
            Watched.reads += 1
            return await super().conversations(tenant_id, after, limit)

    await stored(table, make("globex", "secret", conversation_id="board"))
    browse = BrowseTenants(Watched(table))

    with pytest.raises(AccessDenied):
        await browse.conversations(ACME, "globex")
    assert Watched.reads == 0
    assert [c.conversation_id for c in (await browse.conversations(ADMIN, "globex")).conversations] == ["board"]


async def test_a_bad_tenant_id_is_named(browse):
    with pytest.raises(ValidationFailed) as refused:
        await browse.conversations(ADMIN, "bad tenant")
    assert [p.field for p in refused.value.problems] == ["tenant_id"]
