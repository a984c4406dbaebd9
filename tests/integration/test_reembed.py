"""Model changes on a real PostgreSQL: the model record, and `memorymesh reembed`'s switch.

Each test has a database of its own: a switch renames the vector column.
"""

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from adapters.inprocess.job_queue import InProcessJobQueue
from adapters.postgres.database import DatabaseOptions, PgTransactions, open_database
from adapters.postgres.embedding_models import PgEmbeddingModels
from adapters.postgres.embedding_queue import PgEmbeddingQueue
from adapters.postgres.locks import PgLocks
from adapters.postgres.messages import PgMessageRepository
from adapters.postgres.vector_index import PgVectorIndex
from application.embed_pending import EmbeddingCounters, EmbeddingWorkSettings, EmbedPendingMessages
from application.ports.embedder import EmbedderUnavailable
from application.ports.embedding_models import EmbeddingModel, EmbeddingModelChanged
from application.ports.filters import SearchFilters
from application.ports.storage import StorageUnavailable
from application.ports.vectors import VectorHit, VectorRecord
from application.reembed import Reembed, ReembedRefused, ReembedReport
from application.store_messages import StoreMessageCommand
from domain.access import Principal
from domain.retry import RetryPolicy
from tests.conftest import TEST_MODEL, TEST_MODEL_ID, new_database, pg_vector_index
from tests.fakes.clock import FixedClock
from tests.fakes.embedder import DeterministicEmbedder
from tests.fakes.metrics import InMemoryMetrics
from tests.fakes.vector_index import cosine
from tests.support import inline_store, make

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ADMIN = Principal("test", frozenset(), admin=True)
WORDS = ["river", "garden", "violin", "pepper", "harbour", "lantern", "meadow", "copper", "falcon", "orchard"]
OTHER_WORDS = ["north", "south", "east", "west", "winter", "summer", "morning", "evening", "silver", "golden"]
# Sentences that share words with each other (every search has many hits), then sentences
# that share none with them.
SENTENCES = [" ".join(c) for c in itertools.combinations(WORDS, 4)] + [
    " ".join(c) for c in itertools.combinations(OTHER_WORDS, 4)
]


class RolledEmbedder(DeterministicEmbedder):
    """Another model of the same dimension: the deterministic vectors, rolled by one place."""

    @property
    def model_name(self) -> str:
        return "rolled-384"

    def embed(self, text: str) -> list[float]:
        vector = super().embed(text)
        return vector[-1:] + vector[:-1]


class CountingEmbedder(DeterministicEmbedder):
    """Counts the texts it embeds; unavailable after `pages` calls, or failing on one text."""

    def __init__(self, dimensions: int, pages: int | None = None, fails_on: str | None = None) -> None:
        super().__init__(dimensions)
        self.embedded = 0
        self._pages = pages
        self._fails_on = fails_on

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if self._pages is not None:
            if self._pages == 0:
                raise EmbedderUnavailable("quota exhausted")
            self._pages -= 1
        if self._fails_on in texts:
            raise ValueError("the model cannot read this text")
        self.embedded += len(texts)
        return await super().embed_documents(texts)


def reembed_with(database, embedder, page_size: int) -> Reembed:
    return Reembed(PgEmbeddingModels(database), embedder, PgLocks(database), page_size)


def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def store_all(database, embedder, tenant_id: str, contents: list[str]) -> list:
    store = inline_store(
        PgMessageRepository(database), pg_vector_index(database), embedder, PgTransactions(database), FixedClock(NOW)
    )
    return [
        await store(ADMIN, StoreMessageCommand(tenant_id, "c", "user", text, created_at=NOW - timedelta(seconds=i)))
        for i, text in enumerate(contents)
    ]


async def vectors_of(database) -> dict[uuid.UUID, tuple[str, int | None]]:
    rows = await database.pool.fetch(
        "SELECT id, embedding_status, vector_dims(embedding) AS dims FROM messages ORDER BY id"
    )
    return {r["id"]: (r["embedding_status"], r["dims"]) for r in rows}


async def test_the_first_process_records_its_model_and_another_model_is_refused_with_the_fix(empty_database):
    models = PgEmbeddingModels(empty_database)

    assert await models.claim(TEST_MODEL) == TEST_MODEL_ID  # the fixture recorded it: the same record
    assert await models.active() == TEST_MODEL
    with pytest.raises(EmbeddingModelChanged) as same_dimension:
        await models.claim(EmbeddingModel("rolled-384", 384))
    with pytest.raises(EmbeddingModelChanged) as other_dimension:
        await models.claim(EmbeddingModel("test vectors", 768))

    refusal = str(same_dimension.value)
    assert "made by test vectors (384 dimensions)" in refusal
    assert "configured for rolled-384 (384 dimensions)" in refusal
    assert "`memorymesh reembed`" in refusal and "MEMORY_EMBEDDING_MODEL" in refusal
    assert "configured for test vectors (768 dimensions)" in str(other_dimension.value)
    assert await models.active() == TEST_MODEL  # a refusal records nothing


@asynccontextmanager
async def unrecorded_database(pg_dsn: str, tmp_path) -> AsyncIterator[PgEmbeddingModels]:
    """A database as it was before models were recorded: the schema, no record."""
    async with new_database(pg_dsn) as dsn:
        resource = open_database(DatabaseOptions(url=dsn, data_dir=tmp_path), 384)
        database = await anext(resource)
        try:
            yield PgEmbeddingModels(database)
        finally:
            await resource.aclose()


async def test_a_database_from_before_models_were_recorded(pg_dsn, tmp_path):
    """Its vectors are taken as the configured model's when the dimension fits, and recorded
    as an unknown model's when it does not (only reembed can tell them apart then)."""
    async with unrecorded_database(pg_dsn, tmp_path) as models:
        with pytest.raises(EmbeddingModelChanged, match=r"made by unrecorded model \(384 dimensions\)"):
            await models.claim(EmbeddingModel("gemini-embedding-001", 768))
        assert await models.active() == EmbeddingModel("unrecorded model", 384)
    async with unrecorded_database(pg_dsn, tmp_path) as models:
        # A reembed before any process ran: its model is the one that did NOT make them.
        await models.start_build(EmbeddingModel("rolled-384", 384))
        assert await models.active() == EmbeddingModel("unrecorded model", 384)
    async with unrecorded_database(pg_dsn, tmp_path) as models:
        assert await models.claim(EmbeddingModel("all-MiniLM-L6-v2", 384)) == 1


async def test_reembed_switches_at_once_while_the_old_model_serves_searches_and_writes(empty_database):
    database, old, new = empty_database, DeterministicEmbedder(384), CountingEmbedder(256)
    t = tenant()
    first = await store_all(database, old, t, SENTENCES[:210])
    old_index = pg_vector_index(database)
    query = old.embed(SENTENCES[0])

    store = inline_store(PgMessageRepository(database), old_index, old, PgTransactions(database), FixedClock(NOW))
    switched = asyncio.Event()
    answers: list[list[VectorHit]] = []
    accepted: list = []

    async def search_meanwhile() -> None:
        while not switched.is_set():
            try:
                answers.append(await old_index.search(t, query, 10, SearchFilters()))
            except EmbeddingModelChanged:  # met the switch: from here on it answers 503
                return
            await asyncio.sleep(0)

    async def write_meanwhile() -> None:
        for text in SENTENCES[210:250]:
            if switched.is_set():
                return
            try:
                accepted.append(await store(ADMIN, StoreMessageCommand(t, "c", "user", text, created_at=NOW)))
            except EmbeddingModelChanged:  # met the switch: refused whole (a 503), never half written
                return
            await asyncio.sleep(0)

    async def reembed() -> ReembedReport:
        try:
            return await reembed_with(database, new, 50)(lambda n: None, lambda n: None)
        finally:
            switched.set()

    report, _, _ = await asyncio.gather(reembed(), search_meanwhile(), write_meanwhile())

    content = {m.id: m.content for m in first + accepted}
    assert answers
    for hits in answers:  # every answer before the switch: whole, and from the old vectors
        assert len(hits) == 10 and hits[0].message_id == first[0].id
        assert [h.similarity for h in hits] == pytest.approx(
            [cosine(query, old.embed(content[h.message_id])) for h in hits]
        )
    assert accepted, "writes went on during the build"
    # From the switch on, the old process answers nothing from the new vectors, and writes none
    # of its own into them (a vector of another dimension fails; the whole write rolls back).
    with pytest.raises(EmbeddingModelChanged):
        await old_index.search(t, query, 10, SearchFilters())
    with pytest.raises(EmbeddingModelChanged):
        await store(ADMIN, StoreMessageCommand(t, "c", "user", "refused after the switch", created_at=NOW))
    stored = {m.id for m in first + accepted}
    assert await vectors_of(database) == {i: ("embedded", 256) for i in stored}  # every one, in the new model
    assert (
        report.switched and report.previous == TEST_MODEL and report.model == EmbeddingModel("deterministic-256", 256)
    )
    assert report.reembedded == len(stored) and report.requeued == 0
    assert new.embedded < 2 * len(stored)  # each message once, bar the few caught up at the switch

    new_id = await PgEmbeddingModels(database).claim(report.model)
    hits = await PgVectorIndex(database, new_id).search(t, new.embed(SENTENCES[0]), 10, SearchFilters())
    assert hits[0].message_id == first[0].id and hits[0].similarity == pytest.approx(1.0)
    with pytest.raises(EmbeddingModelChanged, match=r"now made by deterministic-256 \(256 dimensions\)"):
        await old_index.check()  # the old process's readiness


async def test_a_process_left_on_an_old_model_of_the_same_dimension_never_mixes_its_vectors_in(empty_database):
    database, old, new = empty_database, DeterministicEmbedder(384), RolledEmbedder(384)
    t = tenant()
    (message,) = await store_all(database, old, t, SENTENCES[:1])
    await reembed_with(database, new, 50)(lambda n: None, lambda n: None)
    old_index = pg_vector_index(database)
    stale = VectorRecord(
        message.id, t, "c", message.role, message.created_at, message.importance, old.embed(message.content)
    )

    with pytest.raises(EmbeddingModelChanged):
        await old_index.upsert([stale])
    with pytest.raises(EmbeddingModelChanged):
        await old_index.search(t, old.embed(SENTENCES[0]), 5, SearchFilters())

    stored = await database.pool.fetchval("SELECT embedding FROM messages WHERE id = $1", message.id)
    assert list(stored.to_list()) == pytest.approx(new.embed(message.content), abs=1e-6)  # the write was rolled back


async def test_a_message_edited_during_the_build_gets_the_vector_of_its_new_text(empty_database):
    database, old, new = empty_database, DeterministicEmbedder(384), DeterministicEmbedder(256)
    t = tenant()
    (message,) = await store_all(database, old, t, ["the copper lantern by the river"])
    models = PgEmbeddingModels(database)
    await models.start_build(EmbeddingModel(new.model_name, 256))
    (read,) = await models.unbuilt(None, 10)
    assert await models.put_built([(read, new.embed(read.content))]) == 1

    await database.pool.execute("UPDATE messages SET content = 'the falcon over the meadow' WHERE id = $1", message.id)

    assert await models.count_unbuilt() == 1  # the edit dropped the vector of the old text
    assert await models.put_built([(read, new.embed(read.content))]) == 0  # a vector of the old text is refused
    report = await reembed_with(database, new, 10)(lambda n: None, lambda n: None)
    assert report.reembedded == 1
    stored = await database.pool.fetchval("SELECT embedding FROM messages WHERE id = $1", message.id)
    assert list(stored.to_list()) == pytest.approx(new.embed("the falcon over the meadow"), abs=1e-6)


async def test_a_stopped_reembed_is_taken_up_where_it_stopped(empty_database):
    database, old = empty_database, DeterministicEmbedder(384)
    t = tenant()
    messages = await store_all(database, old, t, SENTENCES[:120])
    models = PgEmbeddingModels(database)

    with pytest.raises(EmbedderUnavailable):  # the quota ran out after two pages
        await reembed_with(database, CountingEmbedder(256, pages=2), 25)(lambda n: None, lambda n: None)
    assert await models.active() == TEST_MODEL  # nothing switched: search still reads the old vectors
    assert await models.count_unbuilt() == 70
    hits = await pg_vector_index(database).search(t, old.embed(SENTENCES[0]), 120, SearchFilters())
    assert len(hits) == 120

    again = CountingEmbedder(256)
    report = await reembed_with(database, again, 25)(lambda n: None, lambda n: None)

    assert again.embedded == 70  # the first run's fifty were kept
    assert report.reembedded == 120 - 50 and report.switched
    assert await vectors_of(database) == {m.id: ("embedded", 256) for m in messages}


async def test_a_message_the_new_model_cannot_embed_is_left_pending_for_the_workers(empty_database):
    database, old = empty_database, DeterministicEmbedder(384)
    t = tenant()
    messages = await store_all(database, old, t, SENTENCES[:30])
    report = await reembed_with(database, CountingEmbedder(256, fails_on=SENTENCES[7]), 10)(
        lambda n: None, lambda n: None
    )

    assert report.switched and report.reembedded == 29 and report.requeued == 1
    vectors = await vectors_of(database)
    assert vectors.pop(messages[7].id) == ("pending", None)  # not lost: a worker on the new model retries it
    assert vectors == {m.id: ("embedded", 256) for m in messages if m.id != messages[7].id}


async def test_a_second_reembed_of_the_active_model_does_nothing(empty_database):
    report = await reembed_with(empty_database, DeterministicEmbedder(384), 10)(lambda n: None, lambda n: None)
    # The fixture recorded "test vectors": the deterministic model is another, so this one switched.
    assert report.switched
    again = await reembed_with(empty_database, DeterministicEmbedder(384), 10)(lambda n: None, lambda n: None)
    assert not again.switched and again.reembedded == 0


async def test_reembed_with_the_active_model_drops_an_unfinished_build_of_another(empty_database):
    database = empty_database
    messages = await store_all(database, DeterministicEmbedder(384), tenant(), SENTENCES[:3])
    with pytest.raises(EmbedderUnavailable):
        await reembed_with(database, CountingEmbedder(256, pages=1), 2)(lambda n: None, lambda n: None)

    class Active(DeterministicEmbedder):
        model_name = TEST_MODEL.name  # type: ignore[assignment]

    report = await reembed_with(database, Active(384), 2)(lambda n: None, lambda n: None)

    assert not report.switched
    columns = await database.pool.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'messages'::regclass AND attname LIKE 'embedding_next%'"
    )
    assert columns == []
    assert await database.pool.fetchval("SELECT count(*) FROM embedding_models WHERE state = 'building'") == 0
    await database.pool.execute("UPDATE messages SET content = 'edited' WHERE id = $1", messages[0].id)  # no trigger


async def test_the_switch_gives_up_on_a_write_that_holds_the_table_too_long(empty_database, monkeypatch):
    import adapters.postgres.embedding_models as module

    monkeypatch.setattr(module, "LOCK_TIMEOUT", "200ms")
    database, new = empty_database, DeterministicEmbedder(256)
    messages = await store_all(database, DeterministicEmbedder(384), tenant(), SENTENCES[:5])
    models = PgEmbeddingModels(database)
    await models.start_build(EmbeddingModel(new.model_name, 256))
    await models.put_built([(m, new.embed(m.content)) for m in messages])
    await models.index_build()

    async with database.pool.acquire() as writer, writer.transaction():
        await writer.execute("LOCK TABLE messages IN ROW EXCLUSIVE MODE")  # a write that takes its time
        with pytest.raises(StorageUnavailable, match="could not switch models within 200ms"):
            async with models.switch(EmbeddingModel(new.model_name, 256)):
                pass

    assert await models.active() == TEST_MODEL  # still the old vectors, all of them
    report = await reembed_with(database, new, 10)(lambda n: None, lambda n: None)
    assert report.switched and report.reembedded == 0  # the build was kept; only the switch was left
    assert await vectors_of(database) == {m.id: ("embedded", 256) for m in messages}


async def test_a_process_on_the_new_model_started_during_the_build_serves_from_the_switch_on(empty_database):
    """The handover: start processes on the new model while the build runs, switch, stop the
    old ones. No restart, and no moment without a ready process."""
    database, old, new = empty_database, DeterministicEmbedder(384), DeterministicEmbedder(256)
    t = tenant()
    (message,) = await store_all(database, old, t, SENTENCES[:1])
    models = PgEmbeddingModels(database)
    target = EmbeddingModel(new.model_name, 256)
    with pytest.raises(EmbeddingModelChanged, match="configured for deterministic-256"):
        await models.claim(target)  # no build of it underway: refused
    await models.start_build(target)

    early = PgVectorIndex(database, await models.claim(target))  # now it may start
    with pytest.raises(EmbeddingModelChanged, match="still being built by `memorymesh reembed`"):
        await early.check()  # not ready
    record = VectorRecord(message.id, t, "c", message.role, message.created_at, 0.5, new.embed(message.content))
    with pytest.raises(EmbeddingModelChanged):
        await early.upsert([record])  # writes nothing into the old model's column
    with pytest.raises(EmbeddingModelChanged):
        await early.search(t, new.embed(SENTENCES[0]), 5, SearchFilters())

    await reembed_with(database, new, 10)(lambda n: None, lambda n: None)

    await early.check()  # ready, without a restart
    hits = await early.search(t, new.embed(SENTENCES[0]), 5, SearchFilters())
    assert [h.message_id for h in hits] == [message.id]


async def test_one_reembed_at_a_time(empty_database):
    async with PgLocks(empty_database).try_hold("memorymesh reembed") as held:
        assert held
        with pytest.raises(ReembedRefused, match="another `memorymesh reembed` is running"):
            await reembed_with(empty_database, DeterministicEmbedder(256), 10)(lambda n: None, lambda n: None)
    assert await PgEmbeddingModels(empty_database).active() == TEST_MODEL


async def test_a_new_model_that_fails_on_most_messages_is_not_switched_to(empty_database):
    class Broken(CountingEmbedder):
        async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
            raise ValueError("this model reads nothing")

    database = empty_database
    t = tenant()
    await store_all(database, DeterministicEmbedder(384), t, SENTENCES[:30])

    with pytest.raises(ReembedRefused, match=r"failed on 30 of 30 messages \(the last: ValueError: this model"):
        await reembed_with(database, Broken(256), 10)(lambda n: None, lambda n: None)

    assert await PgEmbeddingModels(database).active() == TEST_MODEL  # search still reads the old vectors
    assert (
        len(
            await pg_vector_index(database).search(
                t, DeterministicEmbedder(384).embed(SENTENCES[0]), 30, SearchFilters()
            )
        )
        == 30
    )


async def test_a_worker_on_the_old_model_claims_nothing_after_the_switch(empty_database):
    database, old = empty_database, DeterministicEmbedder(384)
    t = tenant()
    await store_all(database, old, t, SENTENCES[:2])
    await reembed_with(database, DeterministicEmbedder(256), 10)(lambda n: None, lambda n: None)
    repository = PgMessageRepository(database)
    pending = make(t)
    await repository.add(pending)  # stored by any process, waiting for a worker
    old_model = CountingEmbedder(384)
    embedding_queue = PgEmbeddingQueue(database)
    worker = EmbedPendingMessages(
        embedding_queue,
        pg_vector_index(database),
        old_model,
        PgTransactions(database),
        InProcessJobQueue(),
        EmbeddingWorkSettings(
            batch_size=10, lease=timedelta(minutes=1), retry=RetryPolicy(3, timedelta(seconds=1), timedelta(seconds=5))
        ),
        EmbeddingCounters(),
        InMemoryMetrics(),
    )

    with pytest.raises(EmbeddingModelChanged):
        await worker()

    assert old_model.embedded == 0  # no model call for vectors that would be refused
    claim = await embedding_queue.claim_pending(10, timedelta(minutes=1))  # still there for the new model's workers
    assert claim is not None and [c.message.id for c in claim.messages] == [pending.id]
    assert claim.messages[0].attempts == 1  # this is its first try: the old worker took none
