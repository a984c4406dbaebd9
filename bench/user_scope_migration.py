"""What migration 0010 (user_id) costs on a large messages table, and whether writes go on meanwhile.

    .venv/bin/python bench/user_scope_migration.py [--messages 100000]

Starts an embedded PostgreSQL (a temporary directory), migrates a database, takes it back to
before 0010 (the column and index dropped, the version forgotten), loads --messages messages
of 20 tenants (two LoCoMo turns of text each, a random 384-d vector on each), VACUUM ANALYZE,
then applies 0010 with `upgrade`, as `memorymesh db upgrade` does, while another connection
inserts a message every 5 ms. Reports the migration's wall time, whether the table was
rewritten (its file node), the index's size, and the inserts' latency during the migration.
The HNSW index is dropped before the load (building it would take minutes, and 0010 reads
the table, not that index). Writes bench/results/user_scope_migration.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from harness import RESULTS, SETUP_TIMEOUT, PostgresServer, locomo_turns, machine, mib, percentile

from adapters.postgres.migrations import upgrade

DIMENSIONS = 384
DATABASE = "user_scope"
TENANTS = 20
LOAD = """
INSERT INTO messages (id, tenant_id, conversation_id, role, content, created_at, importance, embedding_status,
                      embedding)
SELECT gen_random_uuid(), 'tenant-' || (i % $2), 'c' || (i % 500), 'user',
       ($1::text[])[1 + i % cardinality($1::text[])],
       now() - make_interval(mins => i), random(), 'embedded',
       (SELECT array_agg(random()::real) FROM generate_series(1, $3) WHERE i > 0)::vector
FROM generate_series($4::int, $5::int) AS i
"""


async def writes_during(dsn: str, stop: asyncio.Event, latencies: list[float]) -> None:
    """Insert one message every 5 ms until told to stop; keep each insert's latency."""
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            began = time.perf_counter()
            await conn.execute(
                "INSERT INTO messages (id, tenant_id, conversation_id, role, content, created_at, importance) "
                "VALUES (gen_random_uuid(), 'tenant-0', 'live', 'user', 'written during the migration', now(), 0.5)"
            )
            latencies.append(time.perf_counter() - began)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.005)
    finally:
        await conn.close()


async def bench(messages: int, scratch: Path) -> str:
    async with PostgresServer.started(scratch, DIMENSIONS) as server:
        await server.admin.pool.execute(f"CREATE DATABASE {DATABASE}")
        dsn = server.dsn(DATABASE)
        conn = await asyncpg.connect(dsn, command_timeout=SETUP_TIMEOUT)
        try:
            await conn.execute("SET search_path = public")
            await upgrade(conn, DIMENSIONS)
            await conn.execute("DELETE FROM schema_migrations WHERE version = '0010_user_scope'")
            await conn.execute("DROP INDEX messages_tenant_user_created")
            await conn.execute("ALTER TABLE messages DROP COLUMN user_id")
            await conn.execute("DROP INDEX messages_embedding_hnsw")
            turns = [f"{a['content']} {b['content']}" for a, b in zip(*[iter(locomo_turns())] * 2, strict=False)]
            random.Random(7).shuffle(turns)
            began = time.perf_counter()
            for start in range(1, messages + 1, 10_000):
                end = min(messages, start + 9_999)
                await conn.execute(LOAD, turns, TENANTS, DIMENSIONS, start, end)
            await conn.execute("VACUUM ANALYZE messages")
            load_seconds = time.perf_counter() - began
            table_size = await conn.fetchval("SELECT pg_table_size('messages')")
            node_before = await conn.fetchval("SELECT pg_relation_filenode('messages')")

            stop, latencies = asyncio.Event(), []
            writer = asyncio.create_task(writes_during(dsn, stop, latencies))
            await asyncio.sleep(0.5)  # the writer is under way before the migration starts
            during_before = len(latencies)
            began = time.perf_counter()
            applied = await upgrade(conn, DIMENSIONS)
            seconds = time.perf_counter() - began
            during = latencies[during_before:]
            stop.set()
            await writer

            assert applied == ["0010_user_scope"], applied
            node_after = await conn.fetchval("SELECT pg_relation_filenode('messages')")
            index_size = await conn.fetchval("SELECT pg_relation_size('messages_tenant_user_created')")
            valid = await conn.fetchval(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = 'messages_tenant_user_created'::regclass"
            )
            version = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
    ms = [x * 1000 for x in during]
    p50, p99 = percentile(ms, 50), percentile(ms, 99)
    rewritten = "no" if node_after == node_before else "YES"
    return "\n".join(
        [
            f"# Migration 0010_user_scope on {messages:,} messages",
            "",
            f"Command: `.venv/bin/python bench/user_scope_migration.py --messages {messages}`",
            "",
            f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}; PostgreSQL {version} (embedded).",
            "",
            f"Set-up, not measured: {messages:,} messages of {TENANTS} tenants, each with a 384-d vector, loaded "
            f"and VACUUM ANALYZEd in {load_seconds:.0f} s; table (with TOAST) {mib(table_size)}; the HNSW index "
            "dropped (0010 does not read it).",
            "",
            "| what | figure |",
            "|---|---:|",
            f"| `upgrade` applying 0010 (ADD COLUMN, CREATE INDEX CONCURRENTLY), wall | {seconds:.2f} s |",
            f"| table rewritten | {rewritten} (file node {node_before} → {node_after}) |",
            f"| messages_tenant_user_created: valid, size | {valid}, {mib(index_size)} (no row has a user yet) |",
            f"| inserts from another connection during the migration | {len(ms)} |",
            f"| their latency p50 / p99 / max | {p50:.1f} / {p99:.1f} / {max(ms):.1f} ms |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="user-scope-") as scratch:
        report = asyncio.run(bench(args.messages, Path(scratch)))
    print(report)
    (RESULTS / "user_scope_migration.md").write_text(report)


if __name__ == "__main__":
    main()
