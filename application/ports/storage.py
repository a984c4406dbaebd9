"""Where the records live: its failures, transactions and cross-process locks."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from application.ports.embedder import EmbedderUnavailable
from domain.errors import DomainError


class StorageUnavailable(DomainError):
    """The system of record or the vector index cannot be reached right now."""

    code = "storage_unavailable"


class QueryTimeout(StorageUnavailable):
    """The database cancelled a statement that ran past its statement timeout: the request
    asks for more work than the timeout allows, and the same request would likely run out
    again. Background work still treats it as unavailable (it tries again later)."""

    code = "query_timeout"


# The database or the model cannot answer right now: background work logs it as a warning
# and tries again; nothing is wrong with the work itself.
UNAVAILABLE: tuple[type[DomainError], ...] = (StorageUnavailable, EmbedderUnavailable)


class Transactions(Protocol):
    """Runs the repository and index calls made inside `begin()` as one unit: when the
    block fails (or is cancelled), none of them stays written."""

    def begin(self) -> AbstractAsyncContextManager[None]: ...


class Locks(Protocol):
    """Named locks held across every process that shares the store."""

    def try_hold(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Hold the lock for the block when it is free; yields False (and holds nothing) when
        another holder has it. A holder that dies releases it."""
        ...
