"""Locks across every process that shares the database: PostgreSQL advisory locks.

A session-level lock held on a connection of its own: if the holder dies, its
connection closes and PostgreSQL releases the lock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from adapters.postgres.database import Database
from application.ports import Locks, StorageUnavailable


class PgLocks(Locks):
    def __init__(self, database: Database) -> None:
        self._database = database

    @asynccontextmanager
    async def try_hold(self, name: str) -> AsyncIterator[bool]:
        try:
            conn = await self._database.pool.acquire()
        except Exception as error:
            raise StorageUnavailable(f"the database does not answer: {type(error).__name__}: {error}") from error
        try:
            held = await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", name)
            try:
                yield bool(held)
            finally:
                if held:
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", name)
        finally:
            await self._database.pool.release(conn)
