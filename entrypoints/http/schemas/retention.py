"""The JSON shapes of retention policies and runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from entrypoints.http.schemas.common import (
    AN_ID,
    JSON_BODY,
    RoleName,
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
