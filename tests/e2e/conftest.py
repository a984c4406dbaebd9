"""Fixtures of the end-to-end tests: real processes sharing a database on the test server."""

import asyncio
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest


async def _admin(pg_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def database_url(pg_dsn: str) -> Iterator[str]:
    """A database of its own on the test server, for every process of one test."""
    name = f"e2e_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(pg_dsn, f'CREATE DATABASE "{name}"'))
    yield urlunsplit(urlsplit(pg_dsn)._replace(path=f"/{name}"))
    asyncio.run(_admin(pg_dsn, f'DROP DATABASE "{name}" WITH (FORCE)'))
