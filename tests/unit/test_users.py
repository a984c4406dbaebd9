"""The user use cases over the fakes: what an erasure keeps when the user changes under it, and
what an export holds."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from application.users import EraseUser, ExportUser, ListUserMessages
from domain.access import AccessDenied, Principal
from domain.errors import ValidationFailed
from tests.fakes.messages import InMemoryMessages, InMemoryMessageTable
from tests.fakes.transactions import InMemoryTransactions
from tests.fakes.users import InMemoryUserMessages
from tests.fakes.vector_index import InMemoryVectorIndex
from tests.support import make

ACME = Principal("acme-key", frozenset({"acme"}))
NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def table() -> InMemoryMessageTable:
    return InMemoryMessageTable()


def eraser(table: InMemoryMessageTable, users=None) -> EraseUser:
    index = InMemoryVectorIndex()
    return EraseUser(
        InMemoryMessages(table), users or InMemoryUserMessages(table), index, InMemoryTransactions(table, index), 2
    )


async def test_a_message_moved_to_another_user_before_its_batch_locks_it_is_kept(table):
    mine, moved = make("acme", "mine", user_id="alice"), make("acme", "moved", user_id="alice")
    await InMemoryMessages(table).add_many([mine, moved])

    class StaleRead(InMemoryUserMessages):
        async def message_ids(self, tenant_id, user_id, limit):
            found = await super().message_ids(tenant_id, user_id, limit)
            if moved.id in table.rows and table.rows[moved.id].user_id == "alice":
                table.rows[moved.id] = replace(table.rows[moved.id], user_id="bob")  # a PATCH, after the read
            return found

    receipt = await eraser(table, StaleRead(table))(ACME, "acme", "alice")

    assert receipt.messages == 1
    assert set(table.rows) == {moved.id}


async def test_an_export_holds_archived_messages_too_in_time_order_across_pages(table):
    messages = [
        make(
            "acme", f"m{i}", user_id="alice", created_at=NOW + timedelta(minutes=i), archived_at=NOW if i % 2 else None
        )
        for i in range(5)
    ]
    await InMemoryMessages(table).add_many(messages)
    exported = [m async for m in await ExportUser(InMemoryUserMessages(table), page_size=2)(ACME, "acme", "alice")]
    assert exported == messages


@pytest.mark.parametrize(
    ("tenant_id", "user_id", "error"),
    [("globex", "alice", AccessDenied), ("acme", "a b", ValidationFailed), ("a b", "alice", ValidationFailed)],
)
async def test_each_use_case_refuses_before_it_reads(table, tenant_id, user_id, error):
    users = InMemoryUserMessages(table)
    with pytest.raises(error):
        await ListUserMessages(users)(ACME, tenant_id, user_id)
    with pytest.raises(error):
        await eraser(table)(ACME, tenant_id, user_id)
    with pytest.raises(error):
        await ExportUser(users)(ACME, tenant_id, user_id)
