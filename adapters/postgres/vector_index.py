"""Nearest-neighbour search in PostgreSQL with pgvector's HNSW index.

The vector lives on the message row. Searches run with `hnsw.iterative_scan`, so a
tenant or filter that matches few rows keeps the scan going until k rows are found
instead of returning a starved result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.postgres.database import Database, storage_errors
from application.ports import SearchFilters, VectorHit, VectorIndex, VectorRecord

MAX_EF_SEARCH = 1000


def filter_clause(tenant_id: str, filters: SearchFilters, params: list[Any]) -> str:
    """The WHERE clause for a search; appends its values to params."""
    params.append(tenant_id)
    clauses = [
        f"tenant_id = ${len(params)}",
        "embedding_status = 'embedded'",
        "archived_at IS NULL",
    ]
    for column, operator, value in (
        ("conversation_id", "=", filters.conversation_id),
        ("role", "=", filters.role.value if filters.role else None),
        ("created_at", ">=", filters.since),
        ("created_at", "<=", filters.until),
        ("importance", ">=", filters.min_importance),
    ):
        if value is not None:
            params.append(value)
            clauses.append(f"{column} {operator} ${len(params)}")
    return " AND ".join(clauses)


class PgVectorIndex(VectorIndex):
    def __init__(self, database: Database) -> None:
        self._pool = database.pool

    @storage_errors
    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        await self._pool.executemany(
            "UPDATE messages SET embedding = $3 WHERE tenant_id = $1 AND id = $2",
            [(r.tenant_id, r.message_id, list(r.vector)) for r in records],
        )

    @storage_errors
    async def search(self, tenant_id: str, vector: Sequence[float], k: int, filters: SearchFilters) -> list[VectorHit]:
        params: list[Any] = [list(vector), k]
        where = filter_clause(tenant_id, filters, params)
        sql = (
            "SELECT id, 1 - (embedding <=> $1) AS similarity FROM messages "
            f"WHERE {where} ORDER BY embedding <=> $1 LIMIT $2"
        )
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"SET LOCAL hnsw.ef_search = {min(MAX_EF_SEARCH, max(40, k))}; "
                "SET LOCAL hnsw.iterative_scan = relaxed_order"
            )
            rows = await conn.fetch(sql, *params)
        # relaxed_order may hand rows back slightly out of order: sort them exactly.
        hits = [VectorHit(r["id"], float(r["similarity"])) for r in rows]
        hits.sort(key=lambda h: (-h.similarity, str(h.message_id)))
        return hits
