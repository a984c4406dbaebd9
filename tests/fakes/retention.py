"""Retention overrides, runs, locks and candidates for one process (the fakes of the use-case tests)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from application.ports.messages import Position
from application.ports.retention import RetentionCandidates, RetentionPolicyStore, RetentionRun, RetentionRuns
from application.ports.storage import Locks
from domain.retention import RetentionAction, RetentionFacts, RetentionPolicy, decide
from tests.fakes.messages import InMemoryMessageTable


class InMemoryRetentionPolicyStore(RetentionPolicyStore):
    def __init__(self) -> None:
        self.overrides: dict[str, dict[str, Any]] = {}

    async def get(self, tenant_id: str) -> dict[str, Any] | None:
        found = self.overrides.get(tenant_id)
        return copy.deepcopy(found) if found is not None else None

    async def put(self, tenant_id: str, overrides: dict[str, Any] | None) -> bool:
        had = tenant_id in self.overrides
        if overrides is None:
            self.overrides.pop(tenant_id, None)
        else:
            self.overrides[tenant_id] = copy.deepcopy(overrides)
        return had


class InMemoryRetentionRuns(RetentionRuns):
    def __init__(self) -> None:
        self.runs: dict[Any, RetentionRun] = {}

    async def start(self, run: RetentionRun) -> None:
        self.runs[run.id] = run

    async def finish(self, run: RetentionRun) -> None:
        self.runs[run.id] = replace(run, skipped=dict(run.skipped), failed=dict(run.failed))

    async def last_complete_start(self) -> datetime | None:
        complete = [
            r.started_at
            for r in self.runs.values()
            if r.finished_at is not None and r.tenant_id is None and not r.dry_run
        ]
        return max(complete, default=None)

    async def recent(self, limit: int) -> list[RetentionRun]:
        return sorted(self.runs.values(), key=lambda r: r.started_at, reverse=True)[:limit]


class InMemoryLocks(Locks):
    def __init__(self) -> None:
        self.held: set[str] = set()

    @asynccontextmanager
    async def try_hold(self, name: str) -> AsyncIterator[bool]:
        if name in self.held:
            yield False
            return
        self.held.add(name)
        try:
            yield True
        finally:
            self.held.discard(name)


class InMemoryRetentionCandidates(RetentionCandidates):
    def __init__(self, table: InMemoryMessageTable) -> None:
        self.table = table

    def _acted_on(self, tenant_id: str, policy: RetentionPolicy, now: datetime) -> list[RetentionFacts]:
        facts = sorted(
            (RetentionFacts.of(m) for m in self.table.rows.values() if m.tenant_id == tenant_id),
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
