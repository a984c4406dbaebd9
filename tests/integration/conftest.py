"""The real all-MiniLM-L6-v2 model, loaded once; the database fixtures live in tests/conftest.py."""

from collections.abc import Iterator

import pytest

from adapters.embeddings.sentence_transformers import SentenceTransformerEmbedder, bundled_model_path, load_model
from tests.conftest import DIMENSIONS

__all__ = ["DIMENSIONS"]


@pytest.fixture(scope="session")
def model():  # type: ignore[no-untyped-def]
    return load_model(bundled_model_path(), "cpu")


@pytest.fixture
def minilm(model) -> Iterator[SentenceTransformerEmbedder]:  # type: ignore[no-untyped-def]
    embedder = SentenceTransformerEmbedder(model, "all-MiniLM-L6-v2", batch_size=64, max_concurrency=1)
    yield embedder
    embedder.close()
