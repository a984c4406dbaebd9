"""Rebuilding the index from the system of record, and spotting drift, over fakes."""

from application.reindex import Reindex
from domain.message import EmbeddingStatus
from tests.fakes.embedder import DeterministicEmbedder
from tests.fakes.vector_index import InMemoryVectorIndex
from tests.support import make


async def test_a_lost_index_is_rebuilt_and_drift_is_reported(repository, catalog):
    embedded = [make("acme", f"note {i}", embedding_status=EmbeddingStatus.EMBEDDED) for i in range(5)]
    pending = make("acme", "not yet", embedding_status=EmbeddingStatus.PENDING)
    await repository.add_many([*embedded, pending, make("globex", "theirs", embedding_status=EmbeddingStatus.EMBEDDED)])
    index = InMemoryVectorIndex()  # empty: as if the index were lost
    reindex = Reindex(catalog, index, DeterministicEmbedder(64), page_size=2)

    before = await reindex.drift("acme")
    assert (before.in_store, before.in_index, before.missing, before.extra, before.clean) == (5, 0, 5, 0, False)

    progress: list[int] = []
    assert await reindex("acme", progress.append) == 5
    assert progress == [2, 2, 1]  # in pages
    assert set(index.records) == {m.id for m in embedded}  # not the pending one, nor globex's
    assert (await reindex.drift("acme")).clean
    assert await reindex.tenants(None) == ["acme", "globex"]


async def test_a_vector_without_an_embedded_message_is_extra(repository, table, catalog):
    reindex = Reindex(catalog, InMemoryVectorIndex(), DeterministicEmbedder(64), page_size=10)
    message = make("acme", embedding_status=EmbeddingStatus.EMBEDDED)
    await repository.add(message)
    await reindex("acme", lambda n: None)
    table.rows.clear()  # the message is gone, its vector stays behind
    drift = await reindex.drift("acme")
    assert (drift.in_store, drift.in_index, drift.missing, drift.extra) == (0, 1, 0, 1)
