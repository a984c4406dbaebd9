"""The JSON shapes of the API (pydantic lives here, at the edge, and nowhere else)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from application.ports.keys import ApiKeyInfo
from domain.instant import RANGE
from domain.message import ID_PATTERN, Message
from domain.ranking import RankedMessage

RoleName = Literal["user", "assistant", "system", "tool"]
# Ids are checked by the domain, which names the rule when one breaks it; the pattern is here
# for the published document (clients, schemathesis), not for pydantic to enforce.
AN_ID: dict[str, Any] = {"pattern": ID_PATTERN.pattern}

# JSON bodies are strict: a bool is a JSON bool, a number a JSON number (an integer will do
# where a float is wanted), a time an ISO 8601 string with an offset. Loosely, "pinned": "yes"
# was stored as true and "importance": true as 1.0. Query strings are text by nature: their
# models (the ...Args) convert.
JSON_BODY = ConfigDict(extra="forbid", strict=True)
ISO_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def iso_text(value: object) -> object:
    """A time only as ISO 8601 text: pydantic would take a number (or a string of digits) as a
    Unix time, and 253402300800 as one in 1978."""
    if isinstance(value, str) and ISO_DATE_TIME.match(value):
        return value
    raise ValueError("must be an ISO 8601 date and time with an offset, as a string, e.g. 2026-05-01T09:30:00Z")


# A time in a JSON body, parsed from its text (strict mode takes a datetime object only).
JsonInstant = Annotated[AwareDatetime, Strict(False), BeforeValidator(iso_text)]


class MessageIn(BaseModel):
    model_config = JSON_BODY

    tenant_id: str = Field(
        description="Tenant the message belongs to: 1-128 of A-Z a-z 0-9 . _ : @ -", json_schema_extra=AN_ID
    )
    conversation_id: str = Field(description="Conversation inside the tenant, same charset", json_schema_extra=AN_ID)
    role: RoleName = Field(description="Who said it", examples=["user"])
    content: str = Field(description="The message text")
    metadata: dict[str, Any] | None = Field(None, description="Any JSON object, stored as is")
    importance: float | None = Field(None, ge=0, le=1, description="Explicit importance; wins over the computed score")
    created_at: JsonInstant | None = Field(
        None, description=f"When it was said (for imports), {RANGE}, kept in UTC; default now"
    )
    client_message_id: str | None = Field(
        None,
        description="Your id for this message: sent again, the message is stored once (same as Idempotency-Key)",
    )
    pinned: bool = Field(False, description="Retention always keeps a pinned message")


class BatchIn(BaseModel):
    model_config = JSON_BODY

    messages: list[MessageIn] = Field(description="Up to 500 messages, all of one tenant")


class StoreArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait: bool = Field(False, description="Answer once the messages are searchable (bounded wait)")


class MessageOut(BaseModel):
    id: uuid.UUID
    tenant_id: str
    conversation_id: str
    role: RoleName
    content: str
    metadata: dict[str, Any]
    importance: float = Field(description="The importance used in ranking, in [0, 1]")
    explicit_importance: float | None
    embedding_status: Literal["pending", "embedded", "failed"] = Field(
        description="Searchable once embedded; failed says why in embedding_error"
    )
    embedding_error: str | None
    client_message_id: str | None
    pinned: bool = Field(description="Retention always keeps it (so does an explicit importance of 1.0)")
    created_at: datetime
    archived_at: datetime | None = Field(description="Set while archived: readable, not searched")
    restored_at: datetime | None = Field(description="When it last came back from the archive")

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        return cls(
            id=message.id,
            tenant_id=message.tenant_id,
            conversation_id=message.conversation_id,
            role=message.role.value,
            content=message.content,
            metadata=message.metadata,
            importance=message.importance,
            explicit_importance=message.explicit_importance,
            embedding_status=message.embedding_status.value,
            embedding_error=message.embedding_error,
            client_message_id=message.client_message_id,
            pinned=message.pinned,
            created_at=message.created_at,
            archived_at=message.archived_at,
            restored_at=message.restored_at,
        )


class BatchOut(BaseModel):
    messages: list[MessageOut]


class TenantArgs(BaseModel):
    tenant_id: str = Field(json_schema_extra=AN_ID)


class MessagePatchIn(BaseModel):
    model_config = JSON_BODY

    content: str | None = Field(None, description="New text; the message is embedded again")
    metadata: dict[str, Any] | None = Field(None, description="Replaces the stored object; null clears it")
    importance: float | None = Field(
        None, ge=0, le=1, description="Explicit importance; null goes back to the computed score"
    )
    pinned: bool | None = Field(None, description="Retention always keeps a pinned message")


class ConversationArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(json_schema_extra=AN_ID)
    limit: int = Field(50, description="Messages per page, 1-200")
    cursor: str | None = Field(None, description="next_cursor of the previous page")
    include_archived: bool = Field(False, description="Include archived messages")


class ConversationOut(BaseModel):
    messages: list[MessageOut] = Field(description="Oldest first")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page")


class ErasureOut(BaseModel):
    tenant_id: str
    conversation_id: str | None
    deleted: dict[str, int] = Field(
        description="What was deleted, per table and index: messages, vectors (and, for a tenant, "
        "tenant_retention and tenant_limits)"
    )


class RetentionPolicyIn(BaseModel):
    model_config = JSON_BODY

    archive_after_days: float | None = Field(
        None, description="Archive unimportant messages older than this; null: never"
    )
    delete_after_days: float | None = Field(
        None, description="Delete unimportant messages older than this; null: never"
    )
    importance_threshold: float | None = Field(None, description="Messages at or above it are kept")
    protected_roles: list[RoleName] | None = Field(None, description="Roles whose messages are always kept")


class RetentionPolicyOut(BaseModel):
    archive_after_days: float | None
    delete_after_days: float | None
    importance_threshold: float
    protected_roles: list[str]


class TenantRetentionOut(BaseModel):
    tenant_id: str
    overrides: dict[str, Any] = Field(description="The fields this tenant sets; the others follow the service default")
    policy: RetentionPolicyOut | None = Field(
        description="The policy that applies to the tenant; null when its overrides no longer fit the default"
    )
    problem: str | None = Field(None, description="Why the overrides no longer fit (runs skip the tenant meanwhile)")


class RetentionRunIn(BaseModel):
    model_config = JSON_BODY

    tenant_id: str | None = Field(
        None, description="Only this tenant; every tenant when absent", json_schema_extra=AN_ID
    )
    dry_run: bool = Field(False, description="Count what would be archived and deleted, and change nothing")


class RetentionCountsOut(BaseModel):
    examined: int = Field(description="Messages old and unimportant enough for the policy to look at")
    archived: int
    deleted: int


class RetentionRunOut(BaseModel):
    run_id: uuid.UUID
    trigger: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    totals: RetentionCountsOut
    tenants: dict[str, RetentionCountsOut] = Field(description="Per tenant the run acted on (or would have)")
    skipped: dict[str, str] = Field(
        default_factory=dict, description="Tenants whose overrides no longer fit the default, and why"
    )
    failed: dict[str, str] = Field(
        default_factory=dict,
        description="Tenants the run could not finish, and why (the kind of error; the log says where): "
        "the run went on with the others",
    )


class RetentionRunsOut(BaseModel):
    runs: list[RetentionRunOut]


SearchModeName = Literal["semantic", "keyword", "hybrid"]


class SearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(json_schema_extra=AN_ID)
    query: str
    mode: SearchModeName | None = Field(
        None,
        description="semantic (meaning), keyword (shared words), hybrid (both); default MEMORY_SEARCH_DEFAULT_MODE",
    )
    top_k: int = 5
    conversation_id: str | None = Field(None, json_schema_extra=AN_ID)
    role: RoleName | None = None
    since: AwareDatetime | None = Field(
        None, description="Messages said at or after it; one before the earliest accepted time means from the start"
    )
    until: AwareDatetime | None = Field(
        None, description="Messages said at or before it; one after the latest accepted time means to the end"
    )
    min_importance: float | None = None


class SearchIn(SearchArgs):
    model_config = JSON_BODY  # SearchArgs as a JSON body: strict, where the query string converts

    since: JsonInstant | None = Field(
        None, description="Messages said at or after it; one before the earliest accepted time means from the start"
    )
    until: JsonInstant | None = Field(
        None, description="Messages said at or before it; one after the latest accepted time means to the end"
    )
    metadata: dict[str, Any] | None = Field(
        None, description="Only messages whose metadata contains this object (JSON containment)"
    )


class ScoresOut(BaseModel):
    similarity: float = Field(
        description="Relevance to the query: cosine similarity (semantic), normalised full-text rank "
        "(keyword), or both fused, with what the best hits lend their neighbours (hybrid), in [0, 1]"
    )
    importance: float
    recency: float = Field(description="0.5 ** (age / half-life)")
    final: float = Field(description="w_sim*similarity + w_imp*importance + w_rec*recency")


class SearchResultOut(BaseModel):
    message: MessageOut
    scores: ScoresOut
    explain: dict[str, float] = Field(
        description="How the relevance was found: semantic / semantic_rank, keyword / keyword_rank (each "
        "present when that way of searching found the message); hybrid adds semantic_scaled / keyword_scaled "
        "(each side min-max scaled over its hits), fused = 0.4*semantic_scaled + 0.6*keyword_scaled, and "
        "neighbour, what the best hit next to it lent: similarity = (fused + 0.3*neighbour) / 1.3 (the weights "
        "are settings)"
    )

    @classmethod
    def of(cls, ranked: RankedMessage) -> SearchResultOut:
        s = ranked.scores
        return cls(
            message=MessageOut.of(ranked.message),
            scores=ScoresOut(similarity=s.similarity, importance=s.importance, recency=s.recency, final=s.final),
            explain=dict(ranked.relevance),
        )


class SearchOut(BaseModel):
    results: list[SearchResultOut]


class ApiKeyIn(BaseModel):
    model_config = JSON_BODY

    name: str = Field(description="What the key is for (shown in listings)")
    tenants: list[str] = Field(default_factory=list, description="Tenants the key may touch")
    admin: bool = Field(False, description="Admin keys touch every tenant and the admin routes")


class ApiKeyOut(BaseModel):
    id: str
    name: str
    tenants: list[str]
    admin: bool
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, info: ApiKeyInfo) -> ApiKeyOut:
        return cls(
            id=info.id,
            name=info.name,
            tenants=sorted(info.tenants),
            admin=info.admin,
            created_at=info.created_at,
            revoked_at=info.revoked_at,
        )


class CreatedApiKeyOut(ApiKeyOut):
    key: str = Field(description="The key itself: shown this once, only its hash is kept")


class ApiKeysOut(BaseModel):
    api_keys: list[ApiKeyOut]


class TenantLimitIn(BaseModel):
    model_config = JSON_BODY

    rate_limit: str | None = Field(
        description="This tenant's limit, e.g. 120/minute (N/second|minute|hour|day); null removes the override",
        examples=["120/minute"],
    )


class TenantLimitOut(BaseModel):
    tenant_id: str
    rate_limit: str | None = Field(description="The tenant's own limit, if it has one")
    default: str | None = Field(description="MEMORY_TENANT_RATE_LIMIT, which applies when it has none")


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadinessOut(BaseModel):
    status: Literal["ready", "degraded", "unavailable"]
    checks: dict[str, str]


class QueueOut(BaseModel):
    pending: int = Field(description="Messages waiting for a worker, including those backing off after a failure")
    claimed: int = Field(description="Messages a worker is embedding now")
    failed: int = Field(description="Messages given up on; each says why in embedding_error")
    oldest_pending_age_seconds: float | None = Field(description="How long the oldest pending message has waited")
    jobs_queued: int = Field(description="Jobs handed to the queue and not yet taken by a worker")
    this_process: dict[str, int] = Field(description="What this process's workers did since it started")


class RequeueIn(BaseModel):
    model_config = JSON_BODY

    tenant_id: str | None = Field(
        None, description="Only this tenant's failed messages; all when absent", json_schema_extra=AN_ID
    )


class RequeueOut(BaseModel):
    requeued: int = Field(description="Failed messages now pending again, with fresh tries")


class Problem(BaseModel):
    type: str
    title: str
    status: int
    code: str
    detail: str
    errors: list[dict[str, str]] | None = None
