"""The real all-MiniLM-L6-v2 model, loaded once (on torch, and exported once to ONNX); the
database fixtures live in tests/conftest.py."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.embeddings.local import LocalEmbedder
from adapters.embeddings.onnx import load_onnx_embedder
from adapters.embeddings.sentence_transformers import (
    SentenceTransformerEmbedder,
    bundled_model_path,
    load_model,
    model_identity,
)
from tests.conftest import DIMENSIONS

__all__ = ["DIMENSIONS"]

MakeEmbedder = Callable[..., LocalEmbedder]


@pytest.fixture(scope="session")
def model():  # type: ignore[no-untyped-def]
    return load_model(bundled_model_path(), "cpu")


@pytest.fixture(scope="session")
def bundled_identity() -> str:
    return model_identity(bundled_model_path(), "all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export of the bundled model for the whole session (it takes seconds)."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture
def minilm(model) -> Iterator[SentenceTransformerEmbedder]:  # type: ignore[no-untyped-def]
    embedder = SentenceTransformerEmbedder(model, "all-MiniLM-L6-v2", batch_size=64, max_concurrency=1)
    yield embedder
    embedder.close()


@pytest.fixture(params=["torch", "onnx"])
def make_local_embedder(request, bundled_identity: str, onnx_cache: Path) -> Iterator[MakeEmbedder]:  # type: ignore[no-untyped-def]
    """Builds the bundled model's embedder on each runtime: the same assertions hold for both."""
    made: list[LocalEmbedder] = []

    def make(batch_size: int = 64, max_concurrency: int = 1, **options: object) -> LocalEmbedder:
        embedder: LocalEmbedder
        if request.param == "torch":
            model = request.getfixturevalue("model")
            embedder = SentenceTransformerEmbedder(model, bundled_identity, batch_size, max_concurrency, **options)  # type: ignore[arg-type]
        else:
            embedder = load_onnx_embedder(
                bundled_model_path(),
                bundled_identity,
                onnx_cache,
                2,
                batch_size,
                max_concurrency,
                **options,  # type: ignore[arg-type]
            )
        made.append(embedder)
        return embedder

    yield make
    for embedder in made:
        embedder.close()


@pytest.fixture
def local_embedder(make_local_embedder: MakeEmbedder) -> LocalEmbedder:
    return make_local_embedder()
