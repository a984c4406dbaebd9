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
from dataclasses import dataclass, field
from datetime import timedelta

from application.jobs import EMBED_PENDING
from application.ports import (
    Embedder,
    EmbeddingClaim,
    EmbeddingRetry,
    JobQueue,
    MessageRepository,
    Transactions,
    VectorIndex,
)
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
    lost_claims: int = 0  # rows another worker took over after this one's lease ran out


class EmbedPendingMessages:
    def __init__(
        self,
        messages: MessageRepository,
        index: VectorIndex,
        embedder: Embedder,
        transactions: Transactions,
        queue: JobQueue,
        settings: EmbeddingWorkSettings,
        counters: EmbeddingCounters,
    ) -> None:
        self._messages = messages
        self._index = index
        self._embedder = embedder
        self._transactions = transactions
        self._queue = queue
        self._settings = settings
        self._counters = counters

    async def __call__(self) -> int:
        """Embed one batch; return how many messages this run made searchable."""
        claim = await self._messages.claim_pending(self._settings.batch_size, self._settings.lease)
        if claim is None:
            return 0
        if len(claim.messages) == self._settings.batch_size:
            self._queue.submit(EMBED_PENDING)
        started = time.perf_counter()
        try:
            vectors = await self._embedder.embed_documents([embedding_text(c.message) for c in claim.messages])
        except asyncio.CancelledError:
            # Stopping: hand the rows straight back rather than leave them to the lease.
            await asyncio.shield(self._messages.release_claim(claim.id, [c.message.id for c in claim.messages]))
            raise
        except Exception as error:  # any model failure is retried, then recorded on the message
            await self._retry(claim, f"{type(error).__name__}: {error}"[:MAX_REASON_CHARS])
            return 0
        async with self._transactions.begin():
            held = set(await self._messages.complete_embedding(claim.id, [c.message.id for c in claim.messages]))
            await self._index.upsert(
                [
                    vector_record(c.message, v)
                    for c, v in zip(claim.messages, vectors, strict=True)
                    if c.message.id in held
                ]
            )
        self._counters.batches += 1
        self._counters.embedded += len(held)
        self._counters.lost_claims += len(claim.messages) - len(held)
        logger.debug(
            "embedded a batch",
            extra={"messages": len(held), "claimed": len(claim.messages), "seconds": time.perf_counter() - started},
        )
        return len(held)

    async def _retry(self, claim: EmbeddingClaim, reason: str) -> None:
        retries = [EmbeddingRetry(c.message.id, self._settings.retry.delay_after(c.attempts)) for c in claim.messages]
        await self._messages.retry_embedding(claim.id, retries, reason)
        failed = sum(1 for r in retries if r.delay is None)
        self._counters.retried += len(retries) - failed
        self._counters.failed += failed
        logger.warning(
            "embedding a batch failed", extra={"messages": len(retries), "gave_up": failed, "reason": reason}
        )


class SweepEmbeddings:
    """Wake a worker when pending messages have waited longer than any live hand-off would take.

    That covers a job lost with Redis, an API process that stopped between commit and
    hand-off, a worker killed mid-batch (its lease runs out), and retries coming due.
    """

    def __init__(self, messages: MessageRepository, queue: JobQueue, grace: timedelta) -> None:
        self._messages = messages
        self._queue = queue
        self._grace = grace

    async def __call__(self) -> int:
        stalled = await self._messages.stalled_embeddings(self._grace)
        if stalled:
            logger.info("sweeper found pending messages nobody is embedding", extra={"messages": stalled})
            self._queue.submit(EMBED_PENDING)
        return stalled
