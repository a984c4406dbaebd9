"""Locks across every process that shares the database: PostgreSQL advisory locks.

A session-level lock held on a connection of its own, outside the pool (the holder's
work needs the pool's connections, and a pool of one would otherwise wait for itself):
if the holder dies, its connection closes and PostgreSQL releases the lock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from adapters.postgres.database import Database
from application.ports.storage import Locks, StorageUnavailable

CONNECT_TIMEOUT_SECONDS = 5.0


class PgLocks(Locks):
    def __init__(self, database: Database) -> None:
        self._database = database

    @asynccontextmanager
    async def try_hold(self, name: str) -> AsyncIterator[bool]:
        try:
            conn = await asyncpg.connect(self._database.dsn, timeout=CONNECT_TIMEOUT_SECONDS)
            held = await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", name)
        except Exception as error:
            raise StorageUnavailable(f"the database does not answer: {type(error).__name__}: {error}") from error
        try:
            yield bool(held)
        finally:
            conn.terminate()  # closing the session releases the lock, whatever state the connection is in
