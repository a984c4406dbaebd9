"""The store's schema: bringing it up to date, and saying where it stands.

Its errors are what a process that cannot start on the database raises: each message
says what to do, and the command line prints it as one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class SchemaNotReady(Exception):
    """The database cannot serve memorymesh as it is; the message says what to do."""


class SchemaMissing(SchemaNotReady):
    """The database has no schema at all: nothing was ever migrated."""


class DatabaseUnreachable(SchemaNotReady):
    """The database did not answer when the process started (refused, timed out, dropped)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"cannot connect to the database: {detail}")
        self.kind = kind  # the name of what failed (ConnectionRefusedError, ...)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SchemaVersions:
    applied: tuple[str, ...]
    pending: tuple[str, ...]


class Schema(Protocol):
    async def upgrade(self) -> list[str]:
        """Apply every migration not yet applied; the versions applied now."""
        ...

    async def versions(self) -> SchemaVersions: ...
