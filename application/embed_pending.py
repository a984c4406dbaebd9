"""The background side of async storing: embed pending messages in batches, and sweep up
work whose hand-off was lost.

A run claims one batch (the claim is a lease on the rows), embeds it in one model call,
then marks the rows embedded and writes their vectors in one transaction. When the
batch came back full, more is waiting, so the run asks for another before it starts the
model: idle workers take the next batches meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from application.jobs import EMBED_PENDING
from application.ports.embedder import Embedder, EmbedderUnavailable
from application.ports.embedding_models import EmbeddingModelChanged
from application.ports.embedding_queue import ClaimedMessage, EmbeddingClaim, EmbeddingQueue, EmbeddingRetry
from application.ports.job_queue import JobQueue
from application.ports.observability import Metrics
from application.ports.storage import StorageUnavailable, Transactions
from application.ports.vectors import VectorIndex
from application.store_messages import embedding_text, vector_record
from domain.retry import RetryPolicy

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class EmbeddingWorkSettings:
    batch_size: int = 32
    lease: timedelta = timedelta(seconds=60)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass
class EmbeddingCounters:
    """What this process's workers have done since it started."""

    batches: int = 0
    embedded: int = 0
    retried: int = 0
    failed: int = 0
    postponed: int = 0  # handed back untried: the model could not work right now
    lost_claims: int = 0  # rows another worker took over after this one's lease ran out


class EmbedPendingMessages:
    def __init__(
        self,
        embedding_queue: EmbeddingQueue,
        index: VectorIndex,
        embedder: Embedder,
        transactions: Transactions,
        queue: JobQueue,
        settings: EmbeddingWorkSettings,
        counters: EmbeddingCounters,
        metrics: Metrics,
    ) -> None:
        self._embedding_queue = embedding_queue
        self._index = index
        self._embedder = embedder
        self._transactions = transactions
        self._queue = queue
        self._settings = settings
        self._counters = counters
        self._metrics = metrics

    async def __call__(self) -> int:
        """Embed one batch; return how many messages this run made searchable."""
        # A process whose model is not (or no longer) the stored vectors' claims nothing: its
        # vectors would be refused, after a model call for nothing (`memorymesh reembed`).
        await self._index.check()
        claim = await self._embedding_queue.claim_pending(self._settings.batch_size, self._settings.lease)
        if claim is None:
            return 0
        if len(claim.messages) == self._settings.batch_size:
            self._queue.submit(EMBED_PENDING)
        started = time.perf_counter()
        failures_before = self._counters.retried + self._counters.failed
        heartbeat = asyncio.get_running_loop().create_task(self._keep_holding(claim))
        try:
            embedded = await self._embed(claim)
        finally:
            heartbeat.cancel()
        try:
            done = await self._complete(claim, embedded)
        except EmbeddingModelChanged:  # `memorymesh reembed` switched: a process on the new model takes them
            await self._embedding_queue.release_claim(claim.id, [c.message.id for c in claim.messages])
            raise
        failures = self._counters.retried + self._counters.failed - failures_before
        self._metrics.embedding_batch(len(claim.messages), time.perf_counter() - started, done, failures)
        logger.debug(
            "embedded a batch",
            extra={"messages": done, "claimed": len(claim.messages), "seconds": time.perf_counter() - started},
        )
        return done

    async def _keep_holding(self, claim: EmbeddingClaim) -> None:
        """Renew the lease while the model works: a slow batch is not a dead worker."""
        while True:
            await asyncio.sleep(self._settings.lease.total_seconds() / 3)
            try:
                await self._embedding_queue.extend_claim(claim.id, self._settings.lease)
            except StorageUnavailable:  # the next renewal may get through; the lease covers the gap
                logger.warning("could not renew an embedding claim", extra={"claim": str(claim.id)})

    async def _embed(self, claim: EmbeddingClaim) -> list[tuple[ClaimedMessage, list[float]]]:
        """The claim's messages with their vectors. A message that cannot be embedded is handed
        back: to retry later without counting a try when the model cannot work right now, and
        counted (then failed, with its reason) when the message itself fails."""
        ids = [c.message.id for c in claim.messages]
        try:
            vectors = await self._embedder.embed_documents([embedding_text(c.message) for c in claim.messages])
            return list(zip(claim.messages, vectors, strict=True))
        except asyncio.CancelledError:  # stopping: hand the rows straight back, not after the lease
            await asyncio.shield(self._embedding_queue.release_claim(claim.id, ids))
            raise
        except EmbedderUnavailable as error:  # overloaded, shut down, quota: not the messages' fault
            await self._postpone(claim.id, ids, error)
            return []
        except Exception as error:
            if len(claim.messages) == 1:
                await self._retry(claim.id, claim.messages, reason_of(error))
                return []
        # One bad message must not sink the others: try each alone.
        embedded = []
        for claimed in claim.messages:
            try:
                (vector,) = await self._embedder.embed_documents([embedding_text(claimed.message)])
                embedded.append((claimed, vector))
            except EmbedderUnavailable as error:
                await self._postpone(claim.id, [claimed.message.id], error)
            except Exception as error:
                await self._retry(claim.id, [claimed], reason_of(error))
        return embedded

    async def _complete(self, claim: EmbeddingClaim, embedded: list[tuple[ClaimedMessage, list[float]]]) -> int:
        if not embedded:
            return 0
        vectors = {c.message.id: v for c, v in embedded}
        async with self._transactions.begin():
            # The rows as they are now, not as claimed: a PATCH or an archive may have changed
            # the fields the index filters on meanwhile (they wait on this transaction's locks).
            held = await self._embedding_queue.complete_embedding(claim.id, list(vectors))
            await self._index.upsert([vector_record(m, vectors[m.id]) for m in held])
        self._counters.batches += 1
        self._counters.embedded += len(held)
        self._counters.lost_claims += len(embedded) - len(held)
        return len(held)

    async def _postpone(self, claim_id: uuid.UUID, ids: list[uuid.UUID], error: Exception) -> None:
        await self._embedding_queue.release_claim(claim_id, ids, delay=self._settings.retry.base_delay)
        self._counters.postponed += len(ids)
        logger.warning("the model cannot embed now; messages wait", extra={"messages": len(ids), "reason": str(error)})

    async def _retry(self, claim_id: uuid.UUID, claimed: list[ClaimedMessage], reason: str) -> None:
        retries = [EmbeddingRetry(c.message.id, self._settings.retry.delay_after(c.attempts)) for c in claimed]
        await self._embedding_queue.retry_embedding(claim_id, retries, reason)
        failed = sum(1 for r in retries if r.delay is None)
        self._counters.retried += len(retries) - failed
        self._counters.failed += failed
        logger.warning("embedding failed", extra={"messages": len(retries), "gave_up": failed, "reason": reason})


def reason_of(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_REASON_CHARS]


class SweepEmbeddings:
    """Wake a worker when pending messages have waited longer than any live hand-off would take.

    That covers a job lost with Redis, an API process that stopped between commit and
    hand-off, a worker killed mid-batch (its lease runs out), and retries coming due.
    """

    def __init__(self, embedding_queue: EmbeddingQueue, queue: JobQueue, grace: timedelta, max_attempts: int) -> None:
        self._embedding_queue = embedding_queue
        self._queue = queue
        self._grace = grace
        self._max_attempts = max_attempts

    async def __call__(self) -> int:
        exhausted = await self._embedding_queue.fail_exhausted(
            self._max_attempts, f"gave up after {self._max_attempts} tries, each lost with the worker holding it"
        )
        if exhausted:
            logger.warning("messages whose workers kept dying were marked failed", extra={"messages": exhausted})
        stalled = await self._embedding_queue.stalled_embeddings(self._grace)
        if stalled:
            logger.info("sweeper found pending messages nobody is embedding", extra={"messages": stalled})
            self._queue.submit(EMBED_PENDING)
        return stalled
