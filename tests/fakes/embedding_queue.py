"""The fake of the embedding queue: a view of the in-memory messages table."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from application.ports.embedding_queue import (
    ClaimedMessage,
    EmbeddingClaim,
    EmbeddingQueue,
    EmbeddingRetry,
    QueueStats,
)
from domain.fair_claims import round_robin_shares
from domain.message import EmbeddingStatus, Message
from tests.fakes.messages import EmbeddingWork, InMemoryMessageTable


class InMemoryEmbeddingQueue(EmbeddingQueue):
    def __init__(self, table: InMemoryMessageTable) -> None:
        self.table = table
        self._last_served = ""  # the tenant the last claim served last: the next one starts after it

    async def mark_embedded(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> None:
        for message_id in message_ids:
            message = self.table.rows.get(message_id)
            if message is not None and message.tenant_id == tenant_id:
                self._set_embedded(message)

    def _set_embedded(self, message: Message) -> None:
        self.table.rows[message.id] = replace(message, embedding_status=EmbeddingStatus.EMBEDDED, embedding_error=None)
        if (work := self.table.work.get(message.id)) is not None:
            work.claim = None

    def _pending(self) -> list[tuple[Message, EmbeddingWork]]:
        return [
            (m, self.table.work[m.id])
            for m in self.table.rows.values()
            if m.embedding_status == EmbeddingStatus.PENDING
        ]

    async def claim_pending(self, limit: int, lease: timedelta) -> EmbeddingClaim | None:
        """Round-robin over the tenants with work ready, from the one after the last served
        (domain/fair_claims.py), as PgEmbeddingQueue does."""
        now = self.table.clock.now()
        waiting: dict[str, list[tuple[Message, EmbeddingWork]]] = {}
        for pending in sorted((p for p in self._pending() if p[1].ready_at <= now), key=lambda p: p[1].ready_at):
            waiting.setdefault(pending[0].tenant_id, []).append(pending)
        tenants = sorted(waiting)
        turns = ([t for t in tenants if t > self._last_served] + [t for t in tenants if t <= self._last_served])[:limit]
        shares = round_robin_shares([len(waiting[t]) for t in turns], limit)
        ranked = sorted(
            (rank, turn, pending)
            for turn, (tenant_id, share) in enumerate(zip(turns, shares, strict=True))
            for rank, pending in enumerate(waiting[tenant_id][:share])
        )
        if not ranked:
            return None
        claim_id = uuid.uuid4()
        for *_, (_, work) in ranked:
            work.claim, work.ready_at, work.attempts = claim_id, now + lease, work.attempts + 1
        self._last_served = ranked[-1][2][0].tenant_id
        return EmbeddingClaim(claim_id, [ClaimedMessage(m, w.attempts) for *_, (m, w) in ranked])

    def _held(self, claim_id: uuid.UUID, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        held = []
        for message_id in message_ids:
            message = self.table.rows.get(message_id)
            if (
                message is not None
                and message.embedding_status == EmbeddingStatus.PENDING
                and self.table.work[message_id].claim == claim_id
            ):
                held.append(message)
        return held

    async def complete_embedding(self, claim_id: uuid.UUID, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        held = self._held(claim_id, message_ids)
        for message in held:
            self._set_embedded(message)
        return [self.table.rows[m.id] for m in held]

    async def retry_embedding(self, claim_id: uuid.UUID, retries: Sequence[EmbeddingRetry], reason: str) -> None:
        delays = {r.message_id: r.delay for r in retries}
        for message in self._held(claim_id, list(delays)):
            work, delay = self.table.work[message.id], delays[message.id]
            work.claim = None
            if delay is None:
                self.table.rows[message.id] = replace(
                    message, embedding_status=EmbeddingStatus.FAILED, embedding_error=reason
                )
            else:
                self.table.rows[message.id] = replace(message, embedding_error=reason)
                work.ready_at = self.table.clock.now() + delay

    async def release_claim(
        self, claim_id: uuid.UUID, message_ids: Sequence[uuid.UUID], delay: timedelta = timedelta(0)
    ) -> None:
        for message in self._held(claim_id, message_ids):
            work = self.table.work[message.id]
            work.claim, work.ready_at, work.attempts = None, self.table.clock.now() + delay, max(work.attempts - 1, 0)

    async def extend_claim(self, claim_id: uuid.UUID, lease: timedelta) -> None:
        for _, work in self._pending():
            if work.claim == claim_id:
                work.ready_at = self.table.clock.now() + lease

    async def fail_exhausted(self, max_attempts: int, reason: str) -> int:
        now = self.table.clock.now()
        exhausted = [m for m, w in self._pending() if w.ready_at <= now and w.attempts >= max_attempts]
        for message in exhausted:
            self.table.rows[message.id] = replace(
                message, embedding_status=EmbeddingStatus.FAILED, embedding_error=reason
            )
            self.table.work[message.id].claim = None
        return len(exhausted)

    async def requeue_failed(self, tenant_id: str | None) -> int:
        failed = [
            m
            for m in self.table.rows.values()
            if m.embedding_status == EmbeddingStatus.FAILED and tenant_id in (None, m.tenant_id)
        ]
        for message in failed:
            self.table.rows[message.id] = replace(
                message, embedding_status=EmbeddingStatus.PENDING, embedding_error=None
            )
            work = self.table.work.setdefault(message.id, EmbeddingWork(self.table.clock.now(), self.table.clock.now()))
            work.claim, work.attempts, work.ready_at = None, 0, self.table.clock.now()
        return len(failed)

    async def stalled_embeddings(self, older_than: timedelta) -> int:
        cutoff = self.table.clock.now() - older_than
        return sum(1 for _, work in self._pending() if work.ready_at <= cutoff)

    async def queue_stats(self) -> QueueStats:
        now = self.table.clock.now()
        pending = self._pending()
        claimed = sum(1 for _, w in pending if w.claim is not None and w.ready_at > now)
        failed = sum(1 for m in self.table.rows.values() if m.embedding_status == EmbeddingStatus.FAILED)
        oldest = min((w.stored_at for _, w in pending), default=None)
        return QueueStats(
            pending=len(pending) - claimed, claimed=claimed, failed=failed, oldest_pending_stored_at=oldest
        )
