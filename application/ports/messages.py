"""The system of record for messages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from application.ports.embedding_queue import EmbeddingClaim, EmbeddingRetry, QueueStats
from application.ports.filters import SearchFilters
from application.ports.text_search import KeywordHit
from domain.message import Message
from domain.retention import RetentionFacts, RetentionPolicy


@dataclass(frozen=True, slots=True)
class Position:
    """Where a walk in time order stopped: the last message seen (a keyset cursor)."""

    created_at: datetime
    message_id: uuid.UUID


class MessageRepository(Protocol):
    """The system of record for messages."""

    async def add(self, message: Message) -> None: ...

    async def add_many(self, messages: Sequence[Message]) -> list[Message]:
        """Store each message unless its tenant already holds one with its client_message_id.

        Returns, in order, what is stored under each: the message given, or the one found.
        Safe under concurrent duplicates: exactly one of them is stored.
        """
        ...

    async def get(self, tenant_id: str, message_id: uuid.UUID) -> Message | None: ...

    async def get_many(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        """The messages of this tenant among message_ids, in any order; unknown ids are left out."""
        ...

    async def mark_embedded(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> None: ...

    async def keyword_search(self, tenant_id: str, query: str, k: int, filters: SearchFilters) -> list[KeywordHit]:
        """At most k of the tenant's unarchived messages that share a word (stemmed) with the query,
        most relevant first. Any word may match (not all of them): ranking sorts out the rest.
        An adapter may leave out messages that share only words found in a large share of
        all messages, unless they share all of the query's such words. Words of the
        message's date (UTC, as "8 May 2023") match as well as its content's."""
        ...

    async def adjacent(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        """For each of the tenant's messages among message_ids, the unarchived messages just
        before and just after it in its conversation, in the order a conversation is listed
        (created_at, then id); none at a conversation's ends."""
        ...

    async def lock(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        """The tenant's messages among message_ids, locked against every other writer until the
        current transaction ends (call it inside Transactions.begin()): what a change decides
        on them cannot be overtaken by a concurrent PATCH, restore, retention run or worker."""
        ...

    async def update(self, message: Message, *, reembed: bool) -> Message | None:
        """Write the message's content, metadata, importance and pinned flag (and its embedding
        status); with `reembed`, its embedding starts afresh (any claim on it is void, so a
        worker still embedding the old text cannot complete). None when it is gone."""
        ...

    async def delete(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """Delete these messages of the tenant; return the ids that were there."""
        ...

    async def archive(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        """Archive those not archived yet; return their ids."""
        ...

    async def restore(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        """Bring archived ones back (restored_at = at); return their ids."""
        ...

    async def conversation_page(
        self, tenant_id: str, conversation_id: str, after: Position | None, limit: int, include_archived: bool
    ) -> list[Message]:
        """Up to `limit` messages of the conversation after `after`, oldest first (ties by id)."""
        ...

    async def message_ids(self, tenant_id: str, conversation_id: str | None, limit: int) -> list[uuid.UUID]:
        """Up to `limit` ids of the tenant's messages (of one conversation, when given), any order."""
        ...

    async def retention_candidates(
        self, tenant_id: str, policy: RetentionPolicy, now: datetime, after: Position | None, limit: int
    ) -> list[RetentionFacts]:
        """Up to `limit` of the tenant's messages the policy may archive or delete at `now`, after
        `after` in (created_at, id) order. A superset is allowed: `decide` has the last word."""
        ...

    async def count_retention_candidates(self, tenant_id: str, policy: RetentionPolicy, now: datetime) -> int: ...

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

    async def tenants(self) -> list[str]:
        """Every tenant that holds a message."""
        ...

    async def embedded_page(self, tenant_id: str, after: uuid.UUID | None, limit: int) -> list[Message]:
        """Up to `limit` embedded messages of the tenant with ids after `after`, in id order."""
        ...

    async def check(self) -> None:
        """Raise StorageUnavailable when the store cannot serve."""
        ...
