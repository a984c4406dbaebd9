"""Erasing a user on the real PostgreSQL (pgvector) and Qdrant (local mode), and what a write
that races the erasure keeps: it is erased whole, or survives whole, never half."""

import asyncio
import math
import random

import pytest
from qdrant_client import AsyncQdrantClient

from adapters.postgres.database import PgTransactions
from adapters.postgres.messages import PgMessageRepository
from adapters.postgres.users import PgUserMessages
from adapters.qdrant.vector_index import QdrantVectorIndex, prepare_collection
from application.ports.filters import SearchFilters
from application.store_messages import vector_record
from application.users import EraseUser
from domain.access import Principal
from domain.message import EmbeddingStatus
from tests.conftest import DIMENSIONS, pg_vector_index
from tests.support import make, tenant

ADMIN = Principal("admin", frozenset(), admin=True)


def unit_vector(seed: int) -> list[float]:
    rng = random.Random(seed)
    values = [rng.gauss(0, 1) for _ in range(DIMENSIONS)]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


@pytest.fixture(params=["pgvector", "qdrant"])
async def index(request, database, tmp_path):
    if request.param == "pgvector":
        yield pg_vector_index(database)
        return
    client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    await prepare_collection(client, "messages", DIMENSIONS)
    yield QdrantVectorIndex(client, "messages")
    await client.close()


async def stored(database, index, t: str, count: int, **fields) -> list:
    """Messages stored in one transaction, embedded, with their vectors in the index."""
    messages = [make(t, f"message {i}", embedding_status=EmbeddingStatus.EMBEDDED, **fields) for i in range(count)]
    await PgMessageRepository(database).add_many(messages)
    await index.upsert([vector_record(m, unit_vector(i)) for i, m in enumerate(messages)])
    return messages


def eraser(database, index, users=None) -> EraseUser:
    return EraseUser(
        PgMessageRepository(database),
        users or PgUserMessages(database),
        index,
        PgTransactions(database),
        batch_size=2,
    )


async def kept(database, messages) -> set:
    rows = await database.pool.fetch("SELECT id FROM messages WHERE id = ANY($1::uuid[])", [m.id for m in messages])
    return {r["id"] for r in rows}


async def test_erasing_a_user_takes_their_rows_and_vectors_only(database, index):
    t, other = tenant(), tenant()
    alice = [
        *await stored(database, index, t, 3, user_id="alice", conversation_id="c1"),
        *await stored(database, index, t, 2, user_id="alice", conversation_id="c2"),
    ]
    rest = [
        *await stored(database, index, t, 2, user_id="bob"),
        *await stored(database, index, t, 1),
        *await stored(database, index, other, 2, user_id="alice"),
    ]

    receipt = await eraser(database, index)(ADMIN, t, "alice")

    assert (receipt.messages, receipt.vectors, receipt.conversations) == (5, 5, 2)
    assert await kept(database, [*alice, *rest]) == {m.id for m in rest}
    assert await index.ids(t) == {m.id for m in rest if m.tenant_id == t}
    assert {h.message_id for h in await index.search(other, unit_vector(0), 10, SearchFilters(user_id="alice"))} == {
        m.id for m in rest if m.tenant_id == other
    }
    again = await eraser(database, index)(ADMIN, t, "alice")
    assert (again.messages, again.vectors, again.conversations) == (0, 0, 0)


async def test_a_write_during_the_erasure_is_erased_whole_and_one_after_its_last_read_survives_whole(database):
    index = pg_vector_index(database)
    t = tenant()
    before = await stored(database, index, t, 5, user_id="alice")
    during = [make(t, f"during {i}", user_id="alice") for i in range(3)]
    after = [make(t, f"after {i}", user_id="alice") for i in range(3)]
    reads = 0

    class WritesRacing(PgUserMessages):
        async def message_ids(self, tenant_id, user_id, limit):
            nonlocal reads
            reads += 1
            if reads == 2:  # between the erasure's batches
                await PgMessageRepository(database).add_many(during)
            found = await super().message_ids(tenant_id, user_id, limit)
            if not found:  # the erasure's last read has found none: what commits now is not its
                await PgMessageRepository(database).add_many(after)
            return found

    receipt = await eraser(database, index, WritesRacing(database))(ADMIN, t, "alice")

    assert receipt.messages == len(before) + len(during)
    assert await kept(database, [*before, *during, *after]) == {m.id for m in after}


async def test_batches_written_while_a_user_is_erased_are_kept_or_gone_whole(database):
    index = pg_vector_index(database)
    t = tenant()
    await stored(database, index, t, 20, user_id="alice")
    batches = [[make(t, f"batch {b} message {i}", user_id="alice") for i in range(5)] for b in range(8)]

    async def write(batch, delay: float) -> None:
        await asyncio.sleep(delay)  # spread the writes over the erasure, not a wait for work
        await PgMessageRepository(database).add_many(batch)

    await asyncio.gather(
        eraser(database, index)(ADMIN, t, "alice"), *(write(b, 0.005 * i) for i, b in enumerate(batches))
    )

    for batch in batches:
        assert len(await kept(database, batch)) in (0, len(batch))
