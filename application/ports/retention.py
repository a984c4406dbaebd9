"""Retention policies per tenant and the record of retention runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from application.ports.messages import Position
from domain.retention import RetentionFacts, RetentionPolicy


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


class RetentionCandidates(Protocol):
    """The messages a retention policy may act on, found without reading every message."""

    async def retention_candidates(
        self, tenant_id: str, policy: RetentionPolicy, now: datetime, after: Position | None, limit: int
    ) -> list[RetentionFacts]:
        """Up to `limit` of the tenant's messages the policy may archive or delete at `now`, after
        `after` in (created_at, id) order. A superset is allowed: `decide` has the last word."""
        ...

    async def count_retention_candidates(self, tenant_id: str, policy: RetentionPolicy, now: datetime) -> int: ...
