"""Retention in PostgreSQL: per-tenant policy overrides, the record of runs, and the
messages a policy may act on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from adapters.postgres.database import Database, storage_errors
from adapters.postgres.instants import aware, aware_or_none
from application.ports.messages import Position
from application.ports.retention import RetentionCandidates, RetentionPolicyStore, RetentionRun, RetentionRuns
from domain.message import Role
from domain.retention import RetentionFacts, RetentionPolicy

# The retention rule (domain/retention.py) as a filter over the tenant's oldest messages:
# it narrows the walk to what decide() may act on, and decide() has the last word. The
# range on created_at (widest cutoff) lets the walk use messages_tenant_created; a
# restore only makes a message younger, so the range stays a superset.
RETENTION_WHERE = """
tenant_id = $1 AND created_at < $2
AND NOT pinned AND explicit_importance IS DISTINCT FROM 1.0 AND importance < $3 AND role <> ALL($4::text[])
AND (($5::timestamptz IS NOT NULL AND archived_at IS NULL AND greatest(created_at, restored_at) < $5)
     OR ($6::timestamptz IS NOT NULL AND greatest(created_at, restored_at) < $6))
"""
RETENTION_COLUMNS = "id, role, created_at, importance, pinned, archived_at, restored_at"


def to_facts(row: asyncpg.Record) -> RetentionFacts:
    """A row of RETENTION_COLUMNS as the retention rule reads it."""
    return RetentionFacts(
        message_id=row["id"],
        role=Role(row["role"]),
        created_at=aware(row["created_at"]),
        importance=row["importance"],
        pinned=row["pinned"],
        archived_at=aware_or_none(row["archived_at"]),
        restored_at=aware_or_none(row["restored_at"]),
    )


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


class PgRetentionCandidates(RetentionCandidates):
    def __init__(self, database: Database) -> None:
        self._database = database

    @staticmethod
    def _retention_args(tenant_id: str, policy: RetentionPolicy, now: datetime) -> list[object]:
        archive = policy.cutoff(policy.archive_after_days, now)
        delete = policy.cutoff(policy.delete_after_days, now)
        widest = max((c for c in (archive, delete) if c is not None), default=None)
        return [
            tenant_id,
            widest,
            policy.importance_threshold,
            sorted(r.value for r in policy.protected_roles),
            archive,
            delete,
        ]

    @storage_errors
    async def retention_candidates(
        self, tenant_id: str, policy: RetentionPolicy, now: datetime, after: Position | None, limit: int
    ) -> list[RetentionFacts]:
        args = self._retention_args(tenant_id, policy, now)
        if args[1] is None:  # the policy neither archives nor deletes
            return []
        keyset = "" if after is None else " AND (created_at, id) > ($8, $9)"
        extra = [] if after is None else [after.created_at, after.message_id]
        rows = await self._database.executor().fetch(
            f"SELECT {RETENTION_COLUMNS} FROM messages WHERE {RETENTION_WHERE}{keyset} "
            "ORDER BY created_at, id LIMIT $7",
            *args,
            limit,
            *extra,
        )
        return [to_facts(r) for r in rows]

    @storage_errors
    async def count_retention_candidates(self, tenant_id: str, policy: RetentionPolicy, now: datetime) -> int:
        args = self._retention_args(tenant_id, policy, now)
        if args[1] is None:
            return 0
        count: int = await self._database.executor().fetchval(
            f"SELECT count(*) FROM messages WHERE {RETENTION_WHERE}", *args
        )
        return count
