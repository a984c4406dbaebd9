"""Retention: each tenant's policy, and the runs that apply it.

A run walks each tenant's oldest messages in bounded batches; each batch is one
transaction that forgets the vectors of the messages it deletes, deletes them, and
archives the others the policy names. A run is idempotent (what it already did, it does
not do again), so a run cut short is simply run again: the schedule sees no complete
run since, and takes it up. One run at a time across every process, through a lock.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from application.ports.clock import Clock
from application.ports.messages import MessageCatalog, MessageRepository, Position
from application.ports.observability import Metrics
from application.ports.retention import RetentionCandidates, RetentionPolicyStore, RetentionRun, RetentionRuns
from application.ports.storage import UNAVAILABLE, Locks, Transactions
from application.ports.vectors import VectorIndex
from domain.access import Principal
from domain.errors import DomainError, ValidationFailed
from domain.message import check_id
from domain.retention import RetentionAction, RetentionFacts, RetentionPolicy, decide

logger = logging.getLogger(__name__)

RETENTION_LOCK = "memorymesh:retention"


class RetentionRunning(DomainError):
    """Another retention run holds the lock."""

    code = "retention_running"


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    overrides: dict[str, Any]  # the fields the tenant sets
    policy: RetentionPolicy | None  # what applies; None when the overrides no longer fit the default
    problem: str | None = None  # why they do not (runs skip the tenant until an admin fixes them)


class TenantRetention:
    """Each tenant's policy: the service default with the tenant's overrides, which admins set."""

    def __init__(self, store: RetentionPolicyStore, default: RetentionPolicy) -> None:
        self._store = store
        self._default = default

    @property
    def default(self) -> RetentionPolicy:
        return self._default

    async def policy_for(self, tenant_id: str) -> RetentionPolicy:
        overrides = await self._store.get(tenant_id)
        return self._default.overridden(overrides) if overrides else self._default

    async def get(self, principal: Principal, tenant_id: str) -> TenantPolicy:
        """The tenant's overrides (possibly none) and the policy that applies to it."""
        principal.require_admin()
        check_id("tenant_id", tenant_id)
        overrides = await self._store.get(tenant_id) or {}
        try:
            return TenantPolicy(overrides, self._default.overridden(overrides))
        except ValidationFailed as error:  # the default moved since the overrides were set
            return TenantPolicy(overrides, None, error.detail)

    async def put(self, principal: Principal, tenant_id: str, overrides: dict[str, Any] | None) -> TenantPolicy:
        """Replace the tenant's overrides (None or {} clears them); refused when the result makes no sense."""
        principal.require_admin()
        check_id("tenant_id", tenant_id)
        policy = self._default.overridden(overrides or {})  # raises, naming the field, before anything is kept
        if overrides and "protected_roles" in overrides:
            overrides = {**overrides, "protected_roles": sorted(r.value for r in policy.protected_roles)}
        await self._store.put(tenant_id, overrides or None)
        return TenantPolicy(overrides or {}, policy)


@dataclass(slots=True)
class RetentionCounts:
    examined: int = 0  # messages the policy could act on, looked at by the run
    archived: int = 0
    deleted: int = 0

    def add(self, other: RetentionCounts) -> None:
        self.examined += other.examined
        self.archived += other.archived
        self.deleted += other.deleted


@dataclass(frozen=True, slots=True)
class RetentionReport:
    run: RetentionRun  # with the tenants it skipped and those it could not finish, and why
    tenants: dict[str, RetentionCounts] = field(default_factory=dict)


Progress = Callable[[str, RetentionCounts], None]  # tenant, what one batch did


class RunRetention:
    def __init__(
        self,
        messages: MessageRepository,
        catalog: MessageCatalog,
        candidates: RetentionCandidates,
        index: VectorIndex,
        transactions: Transactions,
        policies: TenantRetention,
        runs: RetentionRuns,
        locks: Locks,
        clock: Clock,
        batch_size: int,
        metrics: Metrics,
    ) -> None:
        self._messages = messages
        self._catalog = catalog
        self._candidates = candidates
        self._index = index
        self._transactions = transactions
        self._policies = policies
        self._runs = runs
        self._locks = locks
        self._clock = clock
        self._batch_size = batch_size
        self._metrics = metrics

    async def __call__(
        self,
        tenant_id: str | None = None,
        *,
        dry_run: bool = False,
        trigger: str = "admin",
        progress: Progress | None = None,
    ) -> RetentionReport:
        """Run now (over one tenant, or all); refused while another run holds the lock."""
        if tenant_id is not None:
            check_id("tenant_id", tenant_id)
        async with self._locks.try_hold(RETENTION_LOCK) as held:
            if not held:
                raise RetentionRunning("a retention run is in progress; try again once it ends")
            return await self._run(tenant_id, dry_run, trigger, progress)

    async def run_if_due(self, every: timedelta) -> RetentionReport | None:
        """The scheduled run: over every tenant, when no complete run started within `every`
        and no other process is running one. None when it did not run."""
        async with self._locks.try_hold(RETENTION_LOCK) as held:
            if not held:
                return None
            last = await self._runs.last_complete_start()
            if last is not None and self._clock.now() - last < every:
                return None
            return await self._run(None, False, "schedule", None)

    async def planned(self, tenant_id: str | None = None) -> int:
        """How many messages a run would look at now (for a progress bar)."""
        now = self._clock.now()
        total = 0
        for tenant in await self._tenants(tenant_id):
            with contextlib.suppress(ValidationFailed):  # a tenant the run will skip
                policy = await self._policies.policy_for(tenant)
                total += await self._candidates.count_retention_candidates(tenant, policy, now)
        return total

    async def _tenants(self, tenant_id: str | None) -> list[str]:
        return [tenant_id] if tenant_id is not None else await self._catalog.tenants()

    async def _run(
        self, tenant_id: str | None, dry_run: bool, trigger: str, progress: Progress | None
    ) -> RetentionReport:
        now = self._clock.now()
        run = RetentionRun(id=uuid.uuid4(), trigger=trigger, tenant_id=tenant_id, dry_run=dry_run, started_at=now)
        await self._runs.start(run)
        report: dict[str, RetentionCounts] = {}
        skipped: dict[str, str] = {}
        failed: dict[str, str] = {}
        for tenant in await self._tenants(tenant_id):
            try:
                policy = await self._policies.policy_for(tenant)
            except ValidationFailed as error:  # its overrides no longer fit the default: the others go on
                skipped[tenant] = f"its retention overrides no longer fit the default: {error.detail}"
                logger.warning("retention skipped a tenant", extra={"tenant": tenant, "reason": skipped[tenant]})
                continue
            counts = report.setdefault(tenant, RetentionCounts())
            try:
                await self._tenant(tenant, policy, now, dry_run, counts, progress)
            except UNAVAILABLE:  # the store, not the tenant: the run is cut short, and taken up again
                raise
            except Exception as error:  # one tenant's data must not stop the others' retention
                # The error's kind, and in the log where it was raised: never its text, which
                # may quote the tenant's data (a database error quotes the value it refused).
                failed[tenant] = f"failed with {type(error).__name__}; the log says where"
                logger.error(
                    "retention failed for a tenant",
                    extra={
                        "tenant": tenant,
                        "reason": failed[tenant],
                        "where": "".join(traceback.format_tb(error.__traceback__)),
                    },
                )
                self._metrics.retention_failed()
        totals = RetentionCounts()
        for counts in report.values():
            totals.add(counts)
        finished = replace(
            run,
            finished_at=self._clock.now(),
            examined=totals.examined,
            archived=totals.archived,
            deleted=totals.deleted,
            skipped=skipped,
            failed=failed,
        )
        await self._runs.finish(finished)
        logger.info(
            "retention run finished",
            extra={
                "trigger": trigger,
                "dry_run": dry_run,
                "archived": totals.archived,
                "deleted": totals.deleted,
                "failed_tenants": len(failed),
            },
        )
        return RetentionReport(finished, {t: c for t, c in report.items() if c.examined})

    async def _tenant(
        self,
        tenant: str,
        policy: RetentionPolicy,
        now: datetime,
        dry_run: bool,
        counts: RetentionCounts,
        progress: Progress | None,
    ) -> None:
        """Walk the tenant's candidates oldest first, a batch (one transaction) at a time."""
        after: Position | None = None
        while True:
            batch = await self._candidates.retention_candidates(tenant, policy, now, after, self._batch_size)
            if not batch:
                return
            after = Position(batch[-1].created_at, batch[-1].message_id)
            done = await self._apply(tenant, policy, batch, now, dry_run)
            counts.add(done)
            if progress is not None:
                progress(tenant, done)
            if len(batch) < self._batch_size:
                return

    async def _apply(
        self, tenant: str, policy: RetentionPolicy, batch: list[RetentionFacts], now: datetime, dry_run: bool
    ) -> RetentionCounts:
        if dry_run:
            actions = [decide(policy, facts, now).action for facts in batch]
            return RetentionCounts(
                len(batch), actions.count(RetentionAction.ARCHIVE), actions.count(RetentionAction.DELETE)
            )
        async with self._transactions.begin():
            # Decide again on the rows as they are now, locked: a message pinned, restored or
            # changed since the walk read it is judged by what it is, not by what it was.
            locked = await self._messages.lock(tenant, [facts.message_id for facts in batch])
            decisions = [(m.id, decide(policy, RetentionFacts.of(m), now).action) for m in locked]
            to_archive = [i for i, action in decisions if action == RetentionAction.ARCHIVE]
            to_delete = [i for i, action in decisions if action == RetentionAction.DELETE]
            # The rows are locked, so no worker can write a vector for them meanwhile; and
            # should an index (Qdrant) have acted before a failure rolls the rows back, the
            # next run acts again: both steps are idempotent.
            await self._index.delete(tenant, to_delete)
            deleted = await self._messages.delete(tenant, to_delete)
            await self._index.set_fields(tenant, to_archive, archived=True)
            archived = await self._messages.archive(tenant, to_archive, now)
        self._metrics.retention_applied(len(archived), len(deleted))
        return RetentionCounts(len(batch), len(archived), len(deleted))
