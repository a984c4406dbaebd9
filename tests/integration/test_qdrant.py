"""Qdrant specifics (local mode); the shared promises are in tests/contract/test_vector_index.py."""

import pytest
from qdrant_client import AsyncQdrantClient, models

from adapters.qdrant.vector_index import QdrantIndexError, prepare_collection


async def test_a_collection_of_another_dimension_is_refused_with_the_fix(tmp_path):
    client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    try:
        await prepare_collection(client, "messages", 384)
        await prepare_collection(client, "messages", 384)  # again: it fits, nothing to do
        with pytest.raises(QdrantIndexError, match="384-dimensional vectors but the embedder makes 768"):
            await prepare_collection(client, "messages", 768)
    finally:
        await client.close()


async def test_the_collection_uses_cosine_and_indexes_the_tenant(tmp_path):
    client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    try:
        await prepare_collection(client, "messages", 384)
        info = await client.get_collection("messages")
        assert info.config.params.vectors.distance == models.Distance.COSINE
        assert info.config.params.vectors.size == 384
    finally:
        await client.close()
