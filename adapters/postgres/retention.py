"""Retention in PostgreSQL: per-tenant policy overrides, and the record of runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from adapters.postgres.database import Database, storage_errors
from application.ports.retention import RetentionPolicyStore, RetentionRun, RetentionRuns


class PgRetentionPolicyStore(RetentionPolicyStore):
    def __init__(self, database: Database) -> None:
        self._database = database

    @storage_errors
    async def get(self, tenant_id: str) -> dict[str, Any] | None:
        policy: dict[str, Any] | None = await self._database.executor().fetchval(
            "SELECT policy FROM tenant_retention WHERE tenant_id = $1", tenant_id
        )
        return policy

    @storage_errors
    async def put(self, tenant_id: str, overrides: dict[str, Any] | None) -> bool:
        executor = self._database.executor()
        if overrides is None:
            removed = await executor.fetchval(
                "DELETE FROM tenant_retention WHERE tenant_id = $1 RETURNING true", tenant_id
            )
            return bool(removed)
        # xmax = 0 only for a freshly inserted row: it tells an insert from an update.
        inserted = await executor.fetchval(
            "INSERT INTO tenant_retention (tenant_id, policy) VALUES ($1, $2) "
            "ON CONFLICT (tenant_id) DO UPDATE SET policy = EXCLUDED.policy, updated_at = now() "
            "RETURNING xmax = 0",
            tenant_id,
            overrides,
        )
        return not inserted


def to_run(row: asyncpg.Record) -> RetentionRun:
    return RetentionRun(
        id=row["id"],
        trigger=row["trigger"],
        tenant_id=row["tenant_id"],
        dry_run=row["dry_run"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        examined=row["examined"],
        archived=row["archived"],
        deleted=row["deleted"],
        skipped=row["skipped"],
        failed=row["failed"],
    )


class PgRetentionRuns(RetentionRuns):
    def __init__(self, database: Database) -> None:
        self._database = database

    @storage_errors
    async def start(self, run: RetentionRun) -> None:
        await self._database.executor().execute(
            "INSERT INTO retention_runs (id, trigger, tenant_id, dry_run, started_at) VALUES ($1, $2, $3, $4, $5)",
            run.id,
            run.trigger,
            run.tenant_id,
            run.dry_run,
            run.started_at,
        )

    @storage_errors
    async def finish(self, run: RetentionRun) -> None:
        await self._database.executor().execute(
            "UPDATE retention_runs SET finished_at = $2, examined = $3, archived = $4, deleted = $5, "
            "skipped = $6, failed = $7 WHERE id = $1",
            run.id,
            run.finished_at,
            run.examined,
            run.archived,
            run.deleted,
            run.skipped,
            run.failed,
        )

    @storage_errors
    async def last_complete_start(self) -> datetime | None:
        started: datetime | None = await self._database.executor().fetchval(
            "SELECT max(started_at) FROM retention_runs "
            "WHERE finished_at IS NOT NULL AND tenant_id IS NULL AND NOT dry_run"
        )
        return started

    @storage_errors
    async def recent(self, limit: int) -> list[RetentionRun]:
        rows = await self._database.executor().fetch(
            "SELECT * FROM retention_runs ORDER BY started_at DESC LIMIT $1", limit
        )
        return [to_run(r) for r in rows]
