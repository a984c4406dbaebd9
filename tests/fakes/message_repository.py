from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from adapters.clock import SystemClock
from application.ports.clock import Clock
from application.ports.embedding_queue import ClaimedMessage, EmbeddingClaim, EmbeddingRetry, QueueStats
from application.ports.filters import SearchFilters
from application.ports.messages import MessageRepository, Position
from application.ports.text_search import KeywordHit
from domain.fair_claims import round_robin_shares
from domain.message import EmbeddingStatus, Message
from domain.retention import RetentionAction, RetentionFacts, RetentionPolicy, decide


@dataclass
class EmbeddingWork:
    """The queue fields PostgreSQL keeps on each row."""

    stored_at: datetime
    ready_at: datetime
    attempts: int = 0
    claim: uuid.UUID | None = None


WORD = re.compile(r"\w+")


MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def date_words(at: datetime) -> str:
    """As memorymesh_date_words() in PostgreSQL (migration 0005): '8 May 2023', in UTC,
    in English whatever the locale."""
    day = at.astimezone(UTC)
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


STOP_WORDS = frozenset(
    {"a", "an", "and", "are", "did", "do", "i", "in", "is", "it", "my", "of", "on", "the", "to", "what"}
)


class InMemoryMessageRepository(MessageRepository):
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.rows: dict[uuid.UUID, Message] = {}
        self.work: dict[uuid.UUID, EmbeddingWork] = {}
        self._last_served = ""  # the tenant the last claim served last: the next one starts after it

    def snapshot(self) -> tuple[dict[uuid.UUID, Message], dict[uuid.UUID, EmbeddingWork]]:
        return dict(self.rows), copy.deepcopy(self.work)

    def roll_back_to(self, snapshot: tuple[dict[uuid.UUID, Message], dict[uuid.UUID, EmbeddingWork]]) -> None:
        self.rows, self.work = snapshot

    async def add(self, message: Message) -> None:
        await self.add_many([message])

    async def add_many(self, messages: Sequence[Message]) -> list[Message]:
        stored = []
        for message in messages:
            existing = self._by_client_id(message)
            if existing is not None:
                stored.append(existing)
                continue
            now = self.clock.now()
            self.rows[message.id] = message
            self.work[message.id] = EmbeddingWork(stored_at=now, ready_at=now)
            stored.append(message)
        return stored

    def _by_client_id(self, message: Message) -> Message | None:
        if message.client_message_id is None:
            return None
        for row in self.rows.values():
            if row.tenant_id == message.tenant_id and row.client_message_id == message.client_message_id:
                return row
        return None

    async def get(self, tenant_id: str, message_id: uuid.UUID) -> Message | None:
        message = self.rows.get(message_id)
        return message if message is not None and message.tenant_id == tenant_id else None

    async def get_many(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        found = (self.rows.get(i) for i in message_ids)
        return [m for m in found if m is not None and m.tenant_id == tenant_id]

    async def mark_embedded(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> None:
        for message_id in message_ids:
            message = self.rows.get(message_id)
            if message is not None and message.tenant_id == tenant_id:
                self._set_embedded(message)

    async def keyword_search(self, tenant_id: str, query: str, k: int, filters: SearchFilters) -> list[KeywordHit]:
        """Shared lower-cased words of the content and its date, counted: a stand-in for
        PostgreSQL's full-text search."""
        wanted = set(WORD.findall(query.lower())) - STOP_WORDS
        hits = []
        for message in self.rows.values():
            if message.tenant_id != tenant_id or message.archived_at is not None:
                continue
            if not filters.admits(message):
                continue
            words = f"{message.content} {date_words(message.created_at)}".lower()
            shared = len(wanted & set(WORD.findall(words)))
            if shared:
                hits.append(KeywordHit(message.id, float(shared)))
        hits.sort(key=lambda h: (-h.rank, h.message_id))
        return hits[:k]

    async def adjacent(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        found: dict[uuid.UUID, list[uuid.UUID]] = {}
        for message in self._of_tenant(tenant_id, message_ids):
            conversation = sorted(
                (
                    m
                    for m in self.rows.values()
                    if m.tenant_id == tenant_id
                    and m.conversation_id == message.conversation_id
                    and (m.archived_at is None or m.id == message.id)
                ),
                key=lambda m: (m.created_at, m.id),
            )
            at = conversation.index(message)
            found[message.id] = [m.id for m in conversation[max(0, at - 1) : at] + conversation[at + 1 : at + 2]]
        return found

    async def lock(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        return sorted(self._of_tenant(tenant_id, message_ids), key=lambda m: m.id)  # one process: nothing to lock

    async def update(self, message: Message, *, reembed: bool) -> Message | None:
        if await self.get(message.tenant_id, message.id) is None:
            return None
        current = self.rows[message.id]
        updated = replace(
            current,
            content=message.content,
            metadata=message.metadata,
            importance=message.importance,
            explicit_importance=message.explicit_importance,
            pinned=message.pinned,
            embedding_status=message.embedding_status,
        )
        if reembed:
            updated = replace(updated, embedding_error=None)
            now = self.clock.now()
            work = self.work.setdefault(message.id, EmbeddingWork(now, now))
            work.claim, work.attempts, work.ready_at = None, 0, now
        self.rows[message.id] = updated
        return updated

    def _of_tenant(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        found = (self.rows.get(i) for i in dict.fromkeys(message_ids))
        return [m for m in found if m is not None and m.tenant_id == tenant_id]

    async def delete(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        gone = self._of_tenant(tenant_id, message_ids)
        for message in gone:
            del self.rows[message.id]
            self.work.pop(message.id, None)
        return [m.id for m in gone]

    async def archive(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        archived = [m for m in self._of_tenant(tenant_id, message_ids) if m.archived_at is None]
        for message in archived:
            self.rows[message.id] = replace(message, archived_at=at)
        return [m.id for m in archived]

    async def restore(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        restored = [m for m in self._of_tenant(tenant_id, message_ids) if m.archived_at is not None]
        for message in restored:
            self.rows[message.id] = replace(message, archived_at=None, restored_at=at)
        return [m.id for m in restored]

    async def conversation_page(
        self, tenant_id: str, conversation_id: str, after: Position | None, limit: int, include_archived: bool
    ) -> list[Message]:
        chosen = sorted(
            (
                m
                for m in self.rows.values()
                if m.tenant_id == tenant_id
                and m.conversation_id == conversation_id
                and (include_archived or m.archived_at is None)
            ),
            key=lambda m: (m.created_at, m.id),
        )
        if after is not None:
            chosen = [m for m in chosen if (m.created_at, m.id) > (after.created_at, after.message_id)]
        return chosen[:limit]

    async def message_ids(self, tenant_id: str, conversation_id: str | None, limit: int) -> list[uuid.UUID]:
        return [
            m.id
            for m in self.rows.values()
            if m.tenant_id == tenant_id and conversation_id in (None, m.conversation_id)
        ][:limit]

    def _acted_on(self, tenant_id: str, policy: RetentionPolicy, now: datetime) -> list[RetentionFacts]:
        facts = sorted(
            (RetentionFacts.of(m) for m in self.rows.values() if m.tenant_id == tenant_id),
            key=lambda f: (f.created_at, f.message_id),
        )
        return [f for f in facts if decide(policy, f, now).action != RetentionAction.KEEP]

    async def retention_candidates(
        self, tenant_id: str, policy: RetentionPolicy, now: datetime, after: Position | None, limit: int
    ) -> list[RetentionFacts]:
        facts = self._acted_on(tenant_id, policy, now)
        if after is not None:
            facts = [f for f in facts if (f.created_at, f.message_id) > (after.created_at, after.message_id)]
        return facts[:limit]

    async def count_retention_candidates(self, tenant_id: str, policy: RetentionPolicy, now: datetime) -> int:
        return len(self._acted_on(tenant_id, policy, now))

    def _set_embedded(self, message: Message) -> None:
        self.rows[message.id] = replace(message, embedding_status=EmbeddingStatus.EMBEDDED, embedding_error=None)
        if (work := self.work.get(message.id)) is not None:
            work.claim = None

    def _pending(self) -> list[tuple[Message, EmbeddingWork]]:
        return [(m, self.work[m.id]) for m in self.rows.values() if m.embedding_status == EmbeddingStatus.PENDING]

    async def claim_pending(self, limit: int, lease: timedelta) -> EmbeddingClaim | None:
        """Round-robin over the tenants with work ready, from the one after the last served
        (domain/fair_claims.py), as PgMessageRepository does."""
        now = self.clock.now()
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
            message = self.rows.get(message_id)
            if (
                message is not None
                and message.embedding_status == EmbeddingStatus.PENDING
                and self.work[message_id].claim == claim_id
            ):
                held.append(message)
        return held

    async def complete_embedding(self, claim_id: uuid.UUID, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        held = self._held(claim_id, message_ids)
        for message in held:
            self._set_embedded(message)
        return [self.rows[m.id] for m in held]

    async def retry_embedding(self, claim_id: uuid.UUID, retries: Sequence[EmbeddingRetry], reason: str) -> None:
        delays = {r.message_id: r.delay for r in retries}
        for message in self._held(claim_id, list(delays)):
            work, delay = self.work[message.id], delays[message.id]
            work.claim = None
            if delay is None:
                self.rows[message.id] = replace(
                    message, embedding_status=EmbeddingStatus.FAILED, embedding_error=reason
                )
            else:
                self.rows[message.id] = replace(message, embedding_error=reason)
                work.ready_at = self.clock.now() + delay

    async def release_claim(
        self, claim_id: uuid.UUID, message_ids: Sequence[uuid.UUID], delay: timedelta = timedelta(0)
    ) -> None:
        for message in self._held(claim_id, message_ids):
            work = self.work[message.id]
            work.claim, work.ready_at, work.attempts = None, self.clock.now() + delay, max(work.attempts - 1, 0)

    async def extend_claim(self, claim_id: uuid.UUID, lease: timedelta) -> None:
        for _, work in self._pending():
            if work.claim == claim_id:
                work.ready_at = self.clock.now() + lease

    async def fail_exhausted(self, max_attempts: int, reason: str) -> int:
        now = self.clock.now()
        exhausted = [m for m, w in self._pending() if w.ready_at <= now and w.attempts >= max_attempts]
        for message in exhausted:
            self.rows[message.id] = replace(message, embedding_status=EmbeddingStatus.FAILED, embedding_error=reason)
            self.work[message.id].claim = None
        return len(exhausted)

    async def requeue_failed(self, tenant_id: str | None) -> int:
        failed = [
            m
            for m in self.rows.values()
            if m.embedding_status == EmbeddingStatus.FAILED and tenant_id in (None, m.tenant_id)
        ]
        for message in failed:
            self.rows[message.id] = replace(message, embedding_status=EmbeddingStatus.PENDING, embedding_error=None)
            work = self.work.setdefault(message.id, EmbeddingWork(self.clock.now(), self.clock.now()))
            work.claim, work.attempts, work.ready_at = None, 0, self.clock.now()
        return len(failed)

    async def stalled_embeddings(self, older_than: timedelta) -> int:
        cutoff = self.clock.now() - older_than
        return sum(1 for _, work in self._pending() if work.ready_at <= cutoff)

    async def queue_stats(self) -> QueueStats:
        now = self.clock.now()
        pending = self._pending()
        claimed = sum(1 for _, w in pending if w.claim is not None and w.ready_at > now)
        failed = sum(1 for m in self.rows.values() if m.embedding_status == EmbeddingStatus.FAILED)
        oldest = min((w.stored_at for _, w in pending), default=None)
        return QueueStats(
            pending=len(pending) - claimed, claimed=claimed, failed=failed, oldest_pending_stored_at=oldest
        )

    async def tenants(self) -> list[str]:
        return sorted({m.tenant_id for m in self.rows.values()})

    async def embedded_page(self, tenant_id: str, after: uuid.UUID | None, limit: int) -> list[Message]:
        embedded = sorted(
            (
                m
                for m in self.rows.values()
                if m.tenant_id == tenant_id and m.embedding_status == EmbeddingStatus.EMBEDDED
            ),
            key=lambda m: m.id,
        )
        return [m for m in embedded if after is None or m.id > after][:limit]

    async def check(self) -> None:
        return None
