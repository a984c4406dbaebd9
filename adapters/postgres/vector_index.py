"""Nearest-neighbour search in PostgreSQL with pgvector's HNSW index.

The vector lives on the message row, so an upsert is an UPDATE of a stored message; a
message no longer in the table (deleted meanwhile) is skipped, and deleting the row (in
the transaction that calls `delete`) deletes its vector.

A search never starves: each runs with a plan made for its own tenant and filters
(small tenants then use the btree index and an exact sort), with `hnsw.iterative_scan`
so a filter applied after the HNSW walk keeps the walk going, and, when HNSW still
hands back fewer than k rows (its scan stops at `hnsw.max_scan_tuples`), with an exact
scan of the tenant's matching rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from adapters.postgres.database import Database, storage_errors
from application.ports import SearchFilters, VectorHit, VectorIndex, VectorRecord


def filter_clause(tenant_id: str, filters: SearchFilters, params: list[Any], *, vectors: bool = True) -> str:
    """The WHERE clause for a search (over embedded vectors, or over any unarchived message);
    appends its values to params."""
    params.append(tenant_id)
    clauses = [f"tenant_id = ${len(params)}", "archived_at IS NULL"]
    if vectors:
        clauses += ["embedding_status = 'embedded'", "embedding IS NOT NULL"]
    if filters.metadata:
        params.append(filters.metadata)
        clauses.append(f"metadata @> ${len(params)}::jsonb")
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


def search_statement(
    tenant_id: str, vector: Sequence[float], k: int, filters: SearchFilters, *, exact: bool = False
) -> tuple[str, list[Any]]:
    """The SQL and parameters of a search; `exact` scans every matching row instead of HNSW."""
    params: list[Any] = [list(vector), k]
    where = filter_clause(tenant_id, filters, params)
    if exact:  # a MATERIALIZED CTE cannot be answered from the HNSW index
        sql = (
            f"WITH matching AS MATERIALIZED (SELECT id, embedding FROM messages WHERE {where}) "
            "SELECT id, 1 - (embedding <=> $1) AS similarity FROM matching ORDER BY embedding <=> $1 LIMIT $2"
        )
    else:
        sql = (
            "SELECT id, 1 - (embedding <=> $1) AS similarity FROM messages "
            f"WHERE {where} ORDER BY embedding <=> $1 LIMIT $2"
        )
    return sql, params


class PgVectorIndex(VectorIndex):
    def __init__(self, database: Database) -> None:
        self._database = database

    @storage_errors
    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        await self._database.executor().executemany(
            "UPDATE messages SET embedding = $3 WHERE tenant_id = $1 AND id = $2",
            [(r.tenant_id, r.message_id, list(r.vector)) for r in records],
        )

    @storage_errors
    async def delete(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> int:
        # The vector lives on the row, and the repository deletes the row in the same
        # transaction: clearing it first would only rewrite every index entry of the row.
        count: int = await self._database.executor().fetchval(
            "SELECT count(*) FROM messages WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND embedding IS NOT NULL",
            tenant_id,
            list(message_ids),
        )
        return count

    async def drop_tenant(self, tenant_id: str) -> int:
        return 0  # a vector never outlives its row here: erasing the rows erased them all

    async def set_fields(
        self,
        tenant_id: str,
        message_ids: Sequence[uuid.UUID],
        *,
        archived: bool | None = None,
        importance: float | None = None,
    ) -> None:
        return None  # archived_at and importance are columns of the row the search reads

    async def check(self) -> None:
        return None  # the vectors live in the database, which readiness checks already

    @storage_errors
    async def ids(self, tenant_id: str) -> set[uuid.UUID]:
        rows = await self._database.executor().fetch(
            "SELECT id FROM messages WHERE tenant_id = $1 AND embedding IS NOT NULL", tenant_id
        )
        return {r["id"] for r in rows}

    @storage_errors
    async def search(self, tenant_id: str, vector: Sequence[float], k: int, filters: SearchFilters) -> list[VectorHit]:
        # One round trip: the scan settings are the pool's (SEARCH_SETTINGS, set per connection).
        sql, params = search_statement(tenant_id, vector, k, filters)
        rows = await self._database.pool.fetch(sql, *params)
        if len(rows) < k:
            sql, params = search_statement(tenant_id, vector, k, filters, exact=True)
            rows = await self._database.pool.fetch(sql, *params)
        # relaxed_order may hand rows back slightly out of order: sort them exactly.
        hits = [VectorHit(r["id"], float(r["similarity"])) for r in rows]
        hits.sort(key=lambda h: (-h.similarity, str(h.message_id)))
        return hits
