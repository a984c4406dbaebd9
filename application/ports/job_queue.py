"""Handing work to background workers."""

from __future__ import annotations

from typing import Protocol

from domain.errors import DomainError


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


class QueueUnavailable(DomainError):
    code = "queue_unavailable"
