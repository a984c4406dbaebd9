"""The ports the use cases speak to, and the failures an adapter may report.

Adapters subclass these Protocols so that mypy catches any drift.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.access import Principal
from domain.errors import DomainError
from domain.message import Message, Role, metadata_contains
from domain.rate_limit import RateDecision, RateLimit
from domain.retention import RetentionFacts, RetentionPolicy


class StorageUnavailable(DomainError):
    """The system of record or the vector index cannot be reached right now."""

    code = "storage_unavailable"


class QueryTimeout(StorageUnavailable):
    """The database cancelled a statement that ran past its statement timeout: the request
    asks for more work than the timeout allows, and the same request would likely run out
    again. Background work still treats it as unavailable (it tries again later)."""

    code = "query_timeout"


class EmbedderUnavailable(DomainError):
    """The embedding model cannot embed right now."""

    code = "embedder_unavailable"


# The database or the model cannot answer right now: background work logs it as a warning
# and tries again; nothing is wrong with the work itself.
UNAVAILABLE: tuple[type[DomainError], ...] = (StorageUnavailable, EmbedderUnavailable)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    conversation_id: str | None = None
    role: Role | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_importance: float | None = None
    metadata: dict[str, Any] | None = None  # messages whose metadata contains this object (JSON containment)

    def admits(self, message: Message) -> bool:
        """What every search applies: the filters, checked on one message."""
        return self.admits_record(message) and metadata_contains(message.metadata, self.metadata)

    def admits_record(self, record: VectorRecord | Message) -> bool:
        """The filters a vector index applies (a vector record carries no metadata)."""
        return (
            (self.conversation_id is None or record.conversation_id == self.conversation_id)
            and (self.role is None or record.role == self.role)
            and (self.since is None or record.created_at >= self.since)
            and (self.until is None or record.created_at <= self.until)
            and (self.min_importance is None or record.importance >= self.min_importance)
        )


@dataclass(frozen=True, slots=True)
class KeywordHit:
    message_id: uuid.UUID
    rank: float  # full-text relevance, higher is better (comparable within one search only)


@dataclass(frozen=True, slots=True)
class KeywordLimits:
    """What bounds the cost of one keyword search, whatever a tenant has stored or asks."""

    max_terms: int = 32  # distinct words of the query used, in the order they come
    max_ranked: int = 2_000  # matching messages ranked (the newest, when more match)

    def __post_init__(self) -> None:
        if self.max_terms < 1 or self.max_ranked < 1:
            raise ValueError("keyword search limits must be positive")


@dataclass(frozen=True, slots=True)
class VectorRecord:
    """A message's vector with the fields a vector index filters on."""

    message_id: uuid.UUID
    tenant_id: str
    conversation_id: str
    role: Role
    created_at: datetime
    importance: float
    vector: Sequence[float]
    archived: bool = False  # archived messages keep their vector but are never searched


@dataclass(frozen=True, slots=True)
class VectorHit:
    message_id: uuid.UUID
    similarity: float


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


@dataclass(frozen=True, slots=True)
class Position:
    """Where a walk in time order stopped: the last message seen (a keyset cursor)."""

    created_at: datetime
    message_id: uuid.UUID


class Transactions(Protocol):
    """Runs the repository and index calls made inside `begin()` as one unit: when the
    block fails (or is cancelled), none of them stays written."""

    def begin(self) -> AbstractAsyncContextManager[None]: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


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


class VectorIndex(Protocol):
    """Nearest-neighbour search over message vectors, always inside one tenant."""

    async def upsert(self, records: Sequence[VectorRecord]) -> None: ...

    async def search(self, tenant_id: str, vector: Sequence[float], k: int, filters: SearchFilters) -> list[VectorHit]:
        """At most k hits of this tenant, most similar first; archived messages never come back."""
        ...

    async def delete(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> int:
        """Forget these messages' vectors as the messages are deleted: call it in the transaction
        that deletes them from the repository (ids of other tenants are left alone). Returns how
        many of them had a vector."""
        ...

    async def drop_tenant(self, tenant_id: str) -> int:
        """Forget every vector of the tenant as its messages are erased; return how many were left."""
        ...

    async def set_fields(
        self,
        tenant_id: str,
        message_ids: Sequence[uuid.UUID],
        *,
        archived: bool | None = None,
        importance: float | None = None,
    ) -> None:
        """Change the filter fields kept beside these vectors (archived ones are never searched)."""
        ...

    async def ids(self, tenant_id: str) -> set[uuid.UUID]:
        """The ids of the tenant's messages the index holds a vector for (to check for drift)."""
        ...

    async def check(self) -> None:
        """Raise StorageUnavailable when the index cannot serve."""
        ...


class Embedder(Protocol):
    @property
    def model_name(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def embed_query(self, text: str) -> list[float]: ...

    async def check(self) -> None:
        """Raise EmbedderUnavailable when the model cannot embed."""
        ...


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    """A model and the dimension of its vectors: the vectors of two models are never compared."""

    name: str
    dimensions: int

    def __post_init__(self) -> None:
        if not self.name or self.dimensions < 1:
            raise ValueError(f"an embedding model needs a name and a dimension, not {self.name!r}, {self.dimensions}")

    def __str__(self) -> str:
        return f"{self.name} ({self.dimensions} dimensions)"


class EmbeddingModelChanged(StorageUnavailable):
    """The stored vectors were made by another model than this process's."""

    code = "embedding_model_changed"


class EmbeddingModels(Protocol):
    """The record of which model made the stored vectors, and the re-embedding of every
    message with another model beside them (`memorymesh reembed`)."""

    async def claim(self, model: EmbeddingModel) -> int:
        """The id of the record of `model`: the active one, or the one a reembed is building
        (its process serves once the switch is made). A database with no record yet records
        `model` as active. Raises EmbeddingModelChanged, naming the fix, when another model
        made the stored vectors."""
        ...

    async def active(self) -> EmbeddingModel | None: ...

    async def start_build(self, model: EmbeddingModel) -> None:
        """Make room for `model`'s vectors beside the active ones; a build of the same model
        left unfinished is taken up where it stopped, a build of another is dropped."""
        ...

    async def abandon_build(self) -> bool:
        """Drop an unfinished build and its vectors; False when there was none."""
        ...

    async def unbuilt(self, after: uuid.UUID | None, limit: int) -> list[Message]:
        """Messages, in id order after `after`, whose vector exists in the active model only."""
        ...

    async def count_unbuilt(self) -> int: ...

    async def put_built(self, vectors: Sequence[tuple[Message, list[float]]]) -> int:
        """Store new-model vectors; one whose message changed since it was read is left out
        (it shows up as unbuilt again). Returns how many were stored."""
        ...

    async def index_build(self) -> None:
        """Build the search index over the new vectors (search still reads the old ones)."""
        ...

    def switch(self, model: EmbeddingModel) -> AbstractAsyncContextManager[ModelSwitch]:
        """Hold off every vector write, let the caller build the last few, then make the
        vectors built for `model` the searched ones, all in one transaction: a search sees
        either every old vector or every new one."""
        ...


class ModelSwitch(Protocol):
    """The last steps of a model change, inside the switch's transaction."""

    async def unbuilt(self) -> list[Message]: ...

    async def put_built(self, vectors: Sequence[tuple[Message, list[float]]]) -> int: ...

    async def requeue(self, message_ids: Sequence[uuid.UUID]) -> None:
        """Messages the new model could not embed: pending again, to be retried by workers."""
        ...


class QueryVectorCache(Protocol):
    """Query vectors already made, by key (the model and the query text, hashed). A cache
    may forget anything at any time; a failure to reach it raises CacheUnavailable."""

    async def get(self, key: str) -> list[float] | None: ...

    async def put(self, key: str, vector: list[float]) -> None: ...


class CacheUnavailable(Exception):
    """The cache could not answer: a search carries on without it."""


class JobQueue(Protocol):
    """Hands work to background workers, in this process or in others.

    A submission wakes a worker for a named job; submissions not yet picked up may be
    merged into one run. So a job finds its own work (the database holds it), and
    submitting is a hint that never fails the caller: a lost one is made up by the sweeper.
    """

    def submit(self, job: str) -> None: ...

    async def queued(self) -> int:
        """Jobs waiting for a worker."""
        ...

    async def check(self) -> None:
        """Raise QueueUnavailable when jobs cannot be handed over."""
        ...


class RetentionPolicyStore(Protocol):
    """Per-tenant retention overrides: only the fields a tenant sets (see RetentionPolicy.overridden)."""

    async def get(self, tenant_id: str) -> dict[str, Any] | None: ...

    async def put(self, tenant_id: str, overrides: dict[str, Any] | None) -> bool:
        """Set the tenant's overrides; None removes them. Returns whether the tenant had any before."""
        ...


@dataclass(frozen=True, slots=True)
class RetentionRun:
    id: uuid.UUID
    trigger: str  # schedule | admin | cli
    tenant_id: str | None  # None: every tenant
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    examined: int = 0
    archived: int = 0
    deleted: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # tenant: why its policy could not apply
    failed: dict[str, str] = field(default_factory=dict)  # tenant: why the run could not finish it


class RetentionRuns(Protocol):
    """The record of retention runs: what is due, and what happened."""

    async def start(self, run: RetentionRun) -> None: ...

    async def finish(self, run: RetentionRun) -> None: ...

    async def last_complete_start(self) -> datetime | None:
        """When the last run over every tenant that finished (and was not a dry run) started."""
        ...

    async def recent(self, limit: int) -> list[RetentionRun]: ...


class Locks(Protocol):
    """Named locks held across every process that shares the store."""

    def try_hold(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Hold the lock for the block when it is free; yields False (and holds nothing) when
        another holder has it. A holder that dies releases it."""
        ...


class Metrics(Protocol):
    """What the use cases count and time for operators (exported at /metrics). Never a tenant,
    an id or any content as a label: label values come from small fixed sets."""

    def messages_stored(self, count: int, mode: str) -> None:
        """New messages accepted (replays not counted); mode: async | inline."""
        ...

    def search_finished(self, mode: str, seconds: float) -> None: ...

    def embedding_batch(self, size: int, seconds: float, embedded: int, failed: int) -> None:
        """One claim embedded: how many it held, how long it took, how it ended."""
        ...

    def retention_applied(self, archived: int, deleted: int) -> None: ...

    def retention_failed(self) -> None:
        """A tenant a retention run could not finish (the run went on with the others)."""
        ...

    def rate_limited(self, scope: str) -> None:
        """A request refused by a rate limit; scope: key | tenant."""
        ...

    def rate_limiter_unavailable(self, failure_mode: str) -> None:
        """A decision the rate-limit store could not make; failure_mode: open (let through) | closed."""
        ...

    def embedding_truncated(self, kind: str, count: int) -> None:
        """Texts longer than the model reads (the rest is not embedded); kind: document | query."""
        ...

    def query_cache(self, result: str) -> None:
        """A query-vector cache lookup; result: hit | miss | error (the cache could not answer)."""
        ...


class QueueUnavailable(DomainError):
    code = "queue_unavailable"


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    id: str
    key: str
    principal: Principal


class RateLimiterUnavailable(DomainError):
    """The shared rate-limit store cannot be reached right now."""

    code = "rate_limiter_unavailable"


class RateLimiter(Protocol):
    async def hit(self, bucket: str, rate: RateLimit, cost: int = 1) -> RateDecision:
        """Count a request of `cost` units against `bucket` (atomically, across every process
        sharing the store); raise RateLimiterUnavailable when the store cannot answer."""
        ...

    async def check(self) -> None: ...


class TenantLimitStore(Protocol):
    """Per-tenant rate limits that override MEMORY_TENANT_RATE_LIMIT."""

    async def get(self, tenant_id: str) -> RateLimit | None: ...

    async def put(self, tenant_id: str, rate: RateLimit | None) -> None:
        """Set the tenant's limit; None removes the override."""
        ...


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A stored key as admins see it: never the key itself."""

    id: str
    name: str
    tenants: frozenset[str]
    admin: bool
    created_at: datetime
    revoked_at: datetime | None


class ApiKeys(Protocol):
    async def resolve(self, presented_key: str) -> Principal | None:
        """The principal holding this key, or None for an unknown or revoked key."""
        ...


class ApiKeyStore(ApiKeys, Protocol):
    """Keys kept by the service itself (hashed), as opposed to keys from settings."""

    async def create(self, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey: ...

    async def create_first(self, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey | None:
        """Create the key only when the store holds no active key (atomically across processes)."""
        ...

    async def list_keys(self) -> list[ApiKeyInfo]:
        """Every stored key, oldest first, revoked ones included."""
        ...

    async def revoke(self, key_id: str) -> bool:
        """Revoke at once (every process asks the store on each request); False for an unknown id."""
        ...
