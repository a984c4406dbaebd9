"""The JSON shapes of the admin routes: API keys, tenant limits, health, readiness, the queue."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from application.ports.keys import ApiKeyInfo
from entrypoints.http.schemas.common import (
    AN_ID,
    JSON_BODY,
)


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
