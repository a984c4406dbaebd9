"""Handing work to background workers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from domain.errors import DomainError

# What a worker runs for a job: it finds its own work, so it takes nothing.
Handler = Callable[[], Awaitable[object]]


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

    async def run_workers(self, handlers: Mapping[str, Handler], workers: int) -> None:
        """Run the submitted jobs with `workers` tasks until cancelled, when this process is
        where they run (the in-process queue); return at once when other processes run them
        (arq: `memorymesh worker`). A failing job is logged, not fatal."""
        ...

    async def taken(self, job: str) -> None:
        """A worker starts a run of `job`: submissions from now on queue the next run. The
        queue's own bookkeeping, if it keeps any; never fails the run."""
        ...


class QueueUnavailable(DomainError):
    code = "queue_unavailable"
