"""What every local model's embedder shares, whatever runs the model (torch, ONNX Runtime):
encodes on its own threads, never on the event loop, with a bound on waiting calls, queries
going before document batches, and concurrent queries encoded together."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from adapters.embeddings.priority import Priority, PriorityGate
from application.ports.embedder import Embedder, EmbedderUnavailable

logger = logging.getLogger(__name__)


class LocalEmbedder(Embedder):
    """Runs `_encode` (the model's part, a subclass's) on its own threads.

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
        self, model_name: str, dimensions: int, batch_size: int, max_concurrency: int, max_pending: int = 256
    ) -> None:
        self._max_pending = max_pending
        self._pending = 0
        self._closed = False
        self._model_name = model_name
        self._dimensions = dimensions
        self._batch_size = batch_size
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="embed")
        self._gate = PriorityGate(max_concurrency)
        self._max_concurrency = max_concurrency
        self._queries: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._batchers: set[asyncio.Task[None]] = set()

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
        """Unit-length vectors of `texts`, `kind` "query" or "document"; runs on an executor thread."""
        raise NotImplementedError

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
        except RuntimeError as error:  # executor shut down, runtime failure
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
        except Exception as error:  # executor shut down, runtime failure: every waiter hears of it
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
