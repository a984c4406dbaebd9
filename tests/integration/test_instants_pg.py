"""Times at the ends of the calendar on the real PostgreSQL (pgvector) and Qdrant (local mode).

The ends of the accepted range are searched with `since` / `until` at the ends (Qdrant keeps a
time as float Unix seconds, 8 to 30 microseconds apart out there); rows that hold
PostgreSQL's -infinity / infinity, stored before the range existed or by hand, are read,
paged, embedded, searched and run through retention; and a tenant whose retention fails for
real (a trigger refuses its changes) is recorded in the run, which finishes the others.
"""

from datetime import UTC, datetime, timedelta

import pytest
from qdrant_client import AsyncQdrantClient

from adapters.postgres.database import PgTransactions
from adapters.postgres.embedding_queue import PgEmbeddingQueue
from adapters.postgres.locks import PgLocks
from adapters.postgres.messages import PgMessageCatalog, PgMessageRepository
from adapters.postgres.retention import PgRetentionCandidates, PgRetentionPolicyStore, PgRetentionRuns
from adapters.postgres.text_search import PgTextSearch
from adapters.qdrant.vector_index import QdrantVectorIndex, prepare_collection
from application.ports.messages import Position
from application.retention import RunRetention, TenantRetention
from application.search_memory import SearchMemory, SearchQuery, SearchSettings
from application.store_messages import vector_record
from domain.access import Principal
from domain.instant import EARLIEST, LATEST
from domain.message import EmbeddingStatus
from domain.ranking import RankingWeights
from domain.retention import RetentionPolicy
from tests.conftest import DIMENSIONS, pg_vector_index
from tests.fakes.clock import FixedClock
from tests.fakes.embedder import DeterministicEmbedder
from tests.fakes.metrics import InMemoryMetrics
from tests.support import make, tenant

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ADMIN = Principal("admin", frozenset(), admin=True)
MICROSECOND = timedelta(microseconds=1)
MIN_UTC = datetime.min.replace(tzinfo=UTC)
MAX_UTC = datetime.max.replace(tzinfo=UTC)
MODES = ("semantic", "keyword", "hybrid")
embedder = DeterministicEmbedder(dimensions=DIMENSIONS)


@pytest.fixture(params=["pgvector", "qdrant"])
async def index(request, database, tmp_path):
    if request.param == "pgvector":
        yield pg_vector_index(database)
        return
    client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    await prepare_collection(client, "messages", DIMENSIONS)
    yield QdrantVectorIndex(client, "messages")
    await client.close()


async def stored(database, index, t: str, times: list[datetime], **fields) -> list:
    """Embedded messages said at these times, with their vectors in the index."""
    messages = [
        make(t, f"edge note {i}", created_at=at, importance=0.1, embedding_status=EmbeddingStatus.EMBEDDED, **fields)
        for i, at in enumerate(times)
    ]
    await PgMessageRepository(database).add_many(messages)
    vectors = await embedder.embed_documents([m.content for m in messages])
    await index.upsert([vector_record(m, v) for m, v in zip(messages, vectors, strict=True)])
    return messages


def searcher(database, index) -> SearchMemory:
    settings = SearchSettings(weights=RankingWeights())
    return SearchMemory(
        PgMessageRepository(database),
        PgTextSearch(database),
        index,
        embedder,
        FixedClock(NOW),
        settings,
        InMemoryMetrics(),
    )


async def found(search: SearchMemory, t: str, mode: str, **window: datetime) -> set:
    ranked = await search(ADMIN, SearchQuery(t, "edge note", top_k=50, mode=mode, **window))
    return {r.message.id for r in ranked}


def retention(database, index, repository=None) -> RunRetention:
    return RunRetention(
        repository or PgMessageRepository(database),
        PgMessageCatalog(database),
        PgRetentionCandidates(database),
        index,
        PgTransactions(database),
        TenantRetention(PgRetentionPolicyStore(database), RetentionPolicy(archive_after_days=30)),
        PgRetentionRuns(database),
        PgLocks(database),
        FixedClock(NOW),
        batch_size=2,
        metrics=InMemoryMetrics(),
    )


async def test_the_ends_of_the_range_are_found_with_since_and_until_to_the_microsecond(database, index):
    t = tenant()
    first, second, last_but_one, last = await stored(
        database, index, t, [EARLIEST, EARLIEST + MICROSECOND, LATEST - MICROSECOND, LATEST]
    )
    every = {m.id for m in (first, second, last_but_one, last)}
    search = searcher(database, index)
    for mode in MODES:
        assert await found(search, t, mode) == every
        assert await found(search, t, mode, since=EARLIEST, until=LATEST) == every
        assert await found(search, t, mode, since=EARLIEST + MICROSECOND) == every - {first.id}
        assert await found(search, t, mode, until=LATEST - MICROSECOND) == every - {last.id}
        assert await found(search, t, mode, until=EARLIEST) == {first.id}
        assert await found(search, t, mode, since=LATEST) == {last.id}
        assert await found(search, t, mode, since=MIN_UTC, until=MAX_UTC) == every  # read as the range's ends

    repository = PgMessageRepository(database)
    for message in (first, last):
        assert await repository.get(t, message.id) == message


async def legacy(database, index, t: str) -> dict:
    """Messages whose rows hold what the service once stored for datetime.min / max (PostgreSQL's
    -infinity / infinity), next to a time just inside them that it accepted then."""
    messages = await stored(database, index, t, [NOW - timedelta(days=400)] * 5)
    held = {
        "-infinity": messages[0],
        "0001-01-01 05:00:00+00": messages[1],
        "2020-05-01 00:00:00+00": messages[2],
        "9999-12-31 23:00:00+00": messages[3],
        "infinity": messages[4],
    }
    for value, message in held.items():
        await database.pool.execute(f"UPDATE messages SET created_at = '{value}' WHERE id = $1", message.id)
    # A restore stamped -infinity: retention compares it with created_at.
    await database.pool.execute("UPDATE messages SET restored_at = '-infinity' WHERE id = $1", messages[2].id)
    return {value: m.id for value, m in held.items()}


async def test_rows_holding_infinity_read_as_pythons_own_ends_in_utc_and_keep_their_order(database, index):
    t = tenant()
    ids = await legacy(database, index, t)
    in_order = list(ids.values())
    repository = PgMessageRepository(database)

    read = {m.id: m for m in await repository.get_many(t, in_order)}
    assert read[ids["-infinity"]].created_at == MIN_UTC and read[ids["infinity"]].created_at == MAX_UTC
    assert all(m.created_at.utcoffset() == timedelta(0) for m in read.values())
    assert read[ids["2020-05-01 00:00:00+00"]].restored_at == MIN_UTC

    paged, after = [], None
    while page := await repository.conversation_page(t, "c1", after, 1, include_archived=False):
        paged += [m.id for m in page]
        after = Position(page[-1].created_at, page[-1].id)  # a position past infinity stays past it
    assert paged == in_order

    search = searcher(database, index)
    for mode in MODES:
        assert await found(search, t, mode) == set(in_order)
        # Qdrant still holds the times the rows had when embedded: the rows have the last word.
        assert await found(search, t, mode, since=EARLIEST, until=LATEST) == {ids["2020-05-01 00:00:00+00"]}

    report = await retention(database, index)(t, dry_run=True)
    assert report.run.failed == {} and (report.run.examined, report.run.archived) == (3, 3)
    report = await retention(database, index)(t)
    assert report.run.failed == {} and report.run.archived == 3 and report.run.finished_at == NOW
    archived = {m.id for m in await repository.get_many(t, in_order) if m.archived_at is not None}
    assert archived == set(in_order[:3])


async def test_a_pending_row_holding_infinity_is_embedded_into_the_index(empty_database, tmp_path):
    database = empty_database
    client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    try:
        await prepare_collection(client, "messages", DIMENSIONS)
        index = QdrantVectorIndex(client, "messages")
        t = tenant()
        repository = PgMessageRepository(database)
        pending = [make(t, "edge note", created_at=NOW), make(t, "edge note", created_at=NOW)]
        await repository.add_many(pending)
        for value, message in zip(("-infinity", "infinity"), pending, strict=True):
            await database.pool.execute(f"UPDATE messages SET created_at = '{value}' WHERE id = $1", message.id)

        embedding_queue = PgEmbeddingQueue(database)
        claim = await embedding_queue.claim_pending(10, timedelta(minutes=1))
        assert claim is not None
        claimed = [c.message for c in claim.messages]
        vectors = await embedder.embed_documents([m.content for m in claimed])
        await index.upsert([vector_record(m, v) for m, v in zip(claimed, vectors, strict=True)])
        await embedding_queue.complete_embedding(claim.id, [m.id for m in claimed])

        assert await found(searcher(database, index), t, "semantic") == {m.id for m in pending}
    finally:
        await client.close()


async def test_a_tenant_whose_retention_fails_is_recorded_and_the_others_are_done(empty_database):
    database = empty_database
    index = pg_vector_index(database)
    old = [NOW - timedelta(days=45)] * 3
    poisoned = await stored(database, index, "aaa-poisoned", old)
    after = await stored(database, index, "zzz-after", old)
    await database.pool.execute(
        "CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'words of the poisoned tenant'; END $$"
    )
    await database.pool.execute(
        "CREATE TRIGGER poisoned BEFORE UPDATE OR DELETE ON messages FOR EACH ROW "
        "WHEN (OLD.tenant_id = 'aaa-poisoned') EXECUTE FUNCTION refuse_change()"
    )

    report = await retention(database, index)()

    assert set(report.run.failed) == {"aaa-poisoned"} and "words" not in report.run.failed["aaa-poisoned"]
    assert report.run.finished_at == NOW and report.run.archived == 3
    (recorded,) = await PgRetentionRuns(database).recent(5)
    assert recorded == report.run  # failed (and skipped) are kept with the run
    repository = PgMessageRepository(database)
    assert all(m.archived_at is None for m in await repository.get_many("aaa-poisoned", [m.id for m in poisoned]))
    assert all(m.archived_at == NOW for m in await repository.get_many("zzz-after", [m.id for m in after]))
