"""The service's JSON answers, typed: TypedDicts that are the JSON as sent (times stay ISO 8601
strings, ids strings), so nothing is lost or converted on the way."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Role = Literal["user", "assistant", "system", "tool"]
SearchMode = Literal["semantic", "keyword", "hybrid"]
Scope = Literal["conversation", "user", "tenant"]
Order = Literal["oldest", "newest"]


class Message(TypedDict):
    id: str
    tenant_id: str
    conversation_id: str
    role: Role
    content: str
    metadata: dict[str, Any]
    importance: float
    explicit_importance: float | None
    embedding_status: Literal["pending", "embedded", "failed"]
    embedding_error: str | None
    client_message_id: str | None
    pinned: bool
    created_at: str
    archived_at: str | None
    restored_at: str | None
    user_id: str | None


class Page(TypedDict):
    messages: list[Message]
    next_cursor: str | None


class Me(TypedDict):
    key_id: str
    admin: bool
    tenants: int


class Tenant(TypedDict):
    tenant_id: str


class Tenants(TypedDict):
    tenants: list[Tenant]
    next_after: str | None


class ConversationSummary(TypedDict):
    conversation_id: str
    messages: int
    archived: int
    first_at: str
    last_at: str


class Conversations(TypedDict):
    conversations: list[ConversationSummary]
    next_after: str | None


class Batch(TypedDict):
    messages: list[Message]


class Erasure(TypedDict):
    tenant_id: str
    conversation_id: str | None
    deleted: dict[str, int]


class UserErasure(TypedDict):
    tenant_id: str
    user_id: str
    deleted: dict[str, int]


class Scores(TypedDict):
    similarity: float
    importance: float
    recency: float
    final: float


class SearchResult(TypedDict):
    message: Message
    scores: Scores
    explain: dict[str, float]


class SearchResults(TypedDict):
    results: list[SearchResult]


class RecentTurn(TypedDict):
    message: Message
    content: str
    cut: bool
    tokens: int


class Memory(RecentTurn):
    scores: Scores
    explain: dict[str, float]
    reason: str


class Tokens(TypedDict):
    recent: int
    memories: int
    total: int
    budget: int


class Context(TypedDict):
    recent: list[RecentTurn]
    memories: list[Memory]
    prompt: str
    tokens: Tokens
    repeats_dropped: int


class Health(TypedDict):
    status: Literal["ok"]


class Readiness(TypedDict):
    status: Literal["ready", "degraded", "unavailable"]
    checks: dict[str, str]


class QueueStatus(TypedDict):
    pending: int
    claimed: int
    failed: int
    oldest_pending_age_seconds: float | None
    jobs_queued: int
    this_process: dict[str, int]


class Requeued(TypedDict):
    requeued: int


class ApiKey(TypedDict):
    id: str
    name: str
    tenants: list[str]
    admin: bool
    created_at: str
    revoked_at: str | None


class CreatedApiKey(ApiKey):
    key: str


class ApiKeys(TypedDict):
    api_keys: list[ApiKey]


class TenantLimit(TypedDict):
    tenant_id: str
    rate_limit: str | None
    default: str | None


class RetentionPolicy(TypedDict):
    archive_after_days: float | None
    delete_after_days: float | None
    importance_threshold: float
    protected_roles: list[str]


class TenantRetention(TypedDict):
    tenant_id: str
    overrides: dict[str, Any]
    policy: RetentionPolicy | None
    problem: str | None


class RetentionCounts(TypedDict):
    examined: int
    archived: int
    deleted: int


class RetentionRun(TypedDict):
    run_id: str
    trigger: str
    dry_run: bool
    started_at: str
    finished_at: str | None
    totals: RetentionCounts
    tenants: dict[str, RetentionCounts]
    skipped: dict[str, str]
    failed: dict[str, str]


class RetentionRuns(TypedDict):
    runs: list[RetentionRun]
