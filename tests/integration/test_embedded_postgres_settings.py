"""The embedded PostgreSQL runs with the memory settings of ours (MEMORY_POSTGRES_*)."""

from pathlib import Path

import asyncpg
import pytest

from adapters.postgres.database import EmbeddedPostgres
from config.resources import database_options, embedded_postgres_settings
from config.settings import Settings

GIB = 2**30


async def shown(dsn: str, *names: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {name: await conn.fetchval(f"SHOW {name}") for name in names}
    finally:
        await conn.close()


async def test_a_new_and_a_restarted_embedded_server_run_with_the_settings(tmp_path: Path):
    pgdata = tmp_path / "pg"
    first = {"shared_buffers": "160MB", "work_mem": "12MB", "maintenance_work_mem": "96MB"}
    server = EmbeddedPostgres(pgdata, first)
    try:  # a new data directory: made by the first start, then started again with the settings
        assert await shown(server.start(), *first) == first
    finally:
        server.stop()
    changed = {**first, "shared_buffers": "192MB"}
    server = EmbeddedPostgres(pgdata, changed)
    try:
        assert await shown(server.start(), *changed) == changed
    finally:
        server.stop()


def test_unset_settings_are_shares_of_the_ram_and_set_ones_win():
    derived = embedded_postgres_settings(Settings(_env_file=None), ram=24 * GIB)
    assert derived == {
        "shared_buffers": "3072MB",
        "effective_cache_size": "12288MB",
        "maintenance_work_mem": "3072MB",
        "work_mem": "16MB",
    }
    small = embedded_postgres_settings(Settings(_env_file=None, postgres_work_mem="8MB"), ram=GIB)
    assert small == {
        "shared_buffers": "128MB",
        "effective_cache_size": "512MB",
        "maintenance_work_mem": "128MB",
        "work_mem": "8MB",
    }


def test_an_external_server_gets_none_of_them():
    assert database_options(Settings(_env_file=None, database_url="postgresql://db/x")).embedded_settings == {}
    assert database_options(Settings(_env_file=None)).embedded_settings


def test_a_size_without_its_unit_is_refused():
    with pytest.raises(ValueError, match="postgres_shared_buffers"):
        Settings(_env_file=None, postgres_shared_buffers="2048")
