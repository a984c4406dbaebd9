"""Queries that wait for the model go as one batch; a lone query goes at once."""

import asyncio
import threading

import numpy as np
import pytest

from adapters.embeddings.sentence_transformers import SentenceTransformerEmbedder
from application.ports.embedder import EmbedderUnavailable


class CountingModel:
    """Stands in for a SentenceTransformer: records each encode's texts; can be held busy."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.kinds: list[str] = []  # which of encode_query / encode_document ran
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()  # an encode has begun
        self.fail = False
        self.short = False  # answer one vector too few

    def get_embedding_dimension(self) -> int:
        return 3

    def encode_query(self, texts, **options):
        self.kinds.append("query")
        return self.encode(texts, **options)

    def encode_document(self, texts, **options):
        self.kinds.append("document")
        return self.encode(texts, **options)

    def encode(self, texts, **_):
        self.entered.set()
        self.release.wait(5)
        self.calls.append(list(texts))
        if self.fail:
            raise RuntimeError("boom")
        return np.array([[float(len(t)), 0.0, 1.0] for t in texts][: len(texts) - self.short])


async def model_busy(model: CountingModel) -> None:
    """Until the model has begun an encode (bounded)."""
    assert await asyncio.to_thread(model.entered.wait, 5)


async def queued() -> None:
    """Let the tasks just created run up to their wait for a vector."""
    await asyncio.sleep(0)


def embedder(model: CountingModel, batch_size: int = 8, max_pending: int = 256) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(
        model, "counting", batch_size=batch_size, max_concurrency=1, max_pending=max_pending
    )  # type: ignore[arg-type]


async def test_queries_waiting_behind_a_busy_model_share_one_encode():
    model = CountingModel()
    subject = embedder(model)
    model.release.clear()
    first = asyncio.create_task(subject.embed_query("a"))
    await model_busy(model)  # the first encode holds the model
    waiting = [asyncio.create_task(subject.embed_query("b" * n)) for n in range(1, 8)]
    await queued()
    model.release.set()

    assert await first == [1.0, 0.0, 1.0]
    assert [await w for w in waiting] == [[float(n), 0.0, 1.0] for n in range(1, 8)]  # each its own vector
    assert model.calls == [["a"], ["b" * n for n in range(1, 8)]]
    subject.close()


async def test_a_batch_is_at_most_batch_size_queries():
    model = CountingModel()
    subject = embedder(model, batch_size=3)
    model.release.clear()
    calls = [asyncio.create_task(subject.embed_query(str(i))) for i in range(7)]
    await model_busy(model)
    model.release.set()
    await asyncio.gather(*calls)
    assert [len(c) for c in model.calls] == [3, 3, 1]
    subject.close()


async def test_queries_one_after_another_each_get_an_answer():
    model = CountingModel()
    subject = embedder(model)
    for i in range(5):  # every batcher has ended before the next query: a new one must start
        assert await subject.embed_query("x" * i) == [float(i), 0.0, 1.0]
    assert len(model.calls) == 5
    subject.close()


async def test_a_failed_encode_fails_every_query_of_its_batch_and_the_next_batch_works():
    model = CountingModel()
    subject = embedder(model)
    model.fail = True
    results = await asyncio.gather(*(subject.embed_query(str(i)) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, EmbedderUnavailable) and "boom" in str(r) for r in results)
    model.fail = False
    assert await subject.embed_query("ok") == [2.0, 0.0, 1.0]
    subject.close()


async def test_a_caller_that_gives_up_is_left_out_of_the_batch():
    model = CountingModel()
    subject = embedder(model)
    model.release.clear()
    busy = asyncio.create_task(subject.embed_query("busy"))
    await model_busy(model)
    gone = asyncio.create_task(subject.embed_query("gone"))
    kept = asyncio.create_task(subject.embed_query("kept"))
    await queued()
    gone.cancel()
    model.release.set()
    await busy
    assert await kept == [4.0, 0.0, 1.0]
    assert model.calls == [["busy"], ["kept"]]
    with pytest.raises(asyncio.CancelledError):
        await gone
    subject.close()


async def test_an_encode_that_answers_wrongly_fails_its_queries_instead_of_leaving_them_waiting():
    model = CountingModel()
    subject = embedder(model)
    model.short = True
    results = await asyncio.wait_for(
        asyncio.gather(*(subject.embed_query(str(i)) for i in range(3)), return_exceptions=True), timeout=5
    )
    assert all(isinstance(r, EmbedderUnavailable) for r in results)
    assert results[0] is not results[1]  # each caller its own error (and traceback)
    model.short = False
    assert await subject.embed_query("ok") == [2.0, 0.0, 1.0]
    subject.close()


async def test_waiting_callers_past_the_limit_are_refused_at_once():
    model = CountingModel()
    subject = embedder(model, max_pending=2)
    model.release.clear()
    calls = [asyncio.create_task(subject.embed_query(str(i))) for i in range(4)]
    await model_busy(model)
    model.release.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    refused = [isinstance(r, EmbedderUnavailable) and "overloaded" in str(r) for r in results]
    assert refused == [False, False, True, True]
    subject.close()


async def test_queries_and_documents_go_through_the_models_own_query_and_document_encoders():
    model = CountingModel()
    subject = embedder(model)
    await subject.embed_query("a question")
    await subject.embed_documents(["a message", "another"])
    assert model.kinds == ["query", "document"]  # each applies the model's prompt for its kind, if any
    subject.close()
