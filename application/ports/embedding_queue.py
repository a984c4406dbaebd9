"""The embedding work queue: pending messages claimed, embedded, retried."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from domain.message import Message


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    message: Message
    attempts: int  # tries so far, this one included


@dataclass(frozen=True, slots=True)
class EmbeddingClaim:
    """Pending messages one worker holds until it completes, retries or releases them, or
    until the lease runs out and any worker may claim them again."""

    id: uuid.UUID
    messages: list[ClaimedMessage]


@dataclass(frozen=True, slots=True)
class EmbeddingRetry:
    message_id: uuid.UUID
    delay: timedelta | None  # None: no tries left, the message ends failed


@dataclass(frozen=True, slots=True)
class QueueStats:
    pending: int  # waiting for a worker (including those backing off after a failure)
    claimed: int  # held by a worker right now
    failed: int  # given up: embedding_error says why
    oldest_pending_stored_at: datetime | None


class EmbeddingQueue(Protocol):
    """The messages waiting for a vector: claimed by workers, completed, retried or failed."""

    async def mark_embedded(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> None: ...

    async def claim_pending(self, limit: int, lease: timedelta) -> EmbeddingClaim | None:
        """Hold up to `limit` claimable pending messages for `lease`; None when none is.

        Claimable: pending, past any retry delay, and not held under a live lease. The batch is
        shared round-robin among the tenants with messages claimable (domain/fair_claims.py),
        each tenant's oldest first, starting after the tenant the last claim served last, so
        that one tenant's backlog never holds up another's. Concurrent claims never hold the
        same message. Each claim counts as a try.
        """
        ...

    async def complete_embedding(self, claim_id: uuid.UUID, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        """Mark embedded those of message_ids this claim still holds; return them as they are now
        (a PATCH or an archive may have changed their filter fields since the claim)."""
        ...

    async def retry_embedding(self, claim_id: uuid.UUID, retries: Sequence[EmbeddingRetry], reason: str) -> None:
        """Give the claim's messages back to wait their delay, or end them failed, recording the reason."""
        ...

    async def release_claim(
        self, claim_id: uuid.UUID, message_ids: Sequence[uuid.UUID], delay: timedelta = timedelta(0)
    ) -> None:
        """Hand the messages back after `delay`, the try not counted (the worker is stopping, or
        the model cannot work right now: neither is the messages' fault)."""
        ...

    async def extend_claim(self, claim_id: uuid.UUID, lease: timedelta) -> None:
        """Hold the claim's messages for `lease` from now (a worker still at work on them)."""
        ...

    async def fail_exhausted(self, max_attempts: int, reason: str) -> int:
        """End as failed the claimable pending messages that have had `max_attempts` tries (each
        claim counts one, so a message whose worker dies every time ends here); return how many."""
        ...

    async def requeue_failed(self, tenant_id: str | None) -> int:
        """Put failed messages (of one tenant, or all) back in the queue with fresh tries."""
        ...

    async def stalled_embeddings(self, older_than: timedelta) -> int:
        """How many pending messages have been claimable for longer than `older_than` (a lost job or
        a dead worker's lapsed lease): the sweeper's cue to wake a worker."""
        ...

    async def queue_stats(self) -> QueueStats: ...
