"""Nearest-neighbour search in PostgreSQL with pgvector's HNSW index.

The vector lives on the message row, so an upsert is an UPDATE of a stored message; a
message no longer in the table (deleted meanwhile) is skipped, and deleting the row (in
the transaction that calls `delete`) deletes its vector.

A search never starves: each runs with a plan made for its own tenant and filters
(small tenants then use the btree index and an exact sort), with `hnsw.iterative_scan`
so a filter applied after the HNSW walk keeps the walk going, and, when HNSW still
hands back fewer than k rows (its scan stops at `hnsw.max_scan_tuples`), with an exact
scan of the tenant's matching rows.

The column holds one model's vectors (adapters/postgres/embedding_models.py): a search
answers only while this process's model is the active one, and a write that finds it
retired (by `memorymesh reembed`) is rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from adapters.postgres.database import Database, storage_errors
from application.ports.embedding_models import EmbeddingModelChanged
from application.ports.filters import SearchFilters
from application.ports.vectors import KEEP, Keep, VectorHit, VectorIndex, VectorRecord

# The active model, and what this process's model is now (active, building or retired).
ACTIVE = (
    "SELECT id, model, dimensions, (SELECT state FROM embedding_models WHERE id = $1) AS mine "
    "FROM embedding_models WHERE state = 'active'"
)


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
        ("user_id", "=", filters.user_id),
    ):
        if value is not None:
            params.append(value)
            clauses.append(f"{column} {operator} ${len(params)}")
    return " AND ".join(clauses)


def search_statement(
    tenant_id: str, vector: Sequence[float], k: int, filters: SearchFilters, model_id: int, *, exact: bool = False
) -> tuple[str, list[Any]]:
    """The SQL and parameters of a search; `exact` scans every matching row instead of HNSW.

    The statement reads the vectors only while `model_id` is the active model (a one-time
    check in the statement's own snapshot): never another model's vectors.
    """
    params: list[Any] = [list(vector), k]
    where = filter_clause(tenant_id, filters, params)
    params.append(model_id)
    where += f" AND (SELECT state = 'active' FROM embedding_models WHERE id = ${len(params)})"
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
    def __init__(self, database: Database, model_id: int) -> None:
        self._database = database
        self._model_id = model_id  # the record of the model this process embeds with

    @storage_errors
    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        async with self._database.transaction():
            executor = self._database.executor()  # every check on this connection: none waits for another
            await self._require_active(executor)
            try:
                await executor.executemany(
                    "UPDATE messages SET embedding = $3 WHERE tenant_id = $1 AND id = $2",
                    [(r.tenant_id, r.message_id, list(r.vector)) for r in records],
                )
            except asyncpg.DataError as error:  # our vectors fit our column: the column was switched
                raise EmbeddingModelChanged(f"the stored vectors were switched to another model: {error}") from error
            # Again after the write: a model switch holds writes off until it commits, so this
            # sees whether the column written is still this model's.
            await self._require_active(executor)

    async def _require_active(self, executor: asyncpg.Pool | PoolConnectionProxy) -> None:
        row = await executor.fetchrow(ACTIVE, self._model_id)
        if row is None or row["id"] != self._model_id:
            raise self._changed(row)

    def _changed(self, active: asyncpg.Record | None) -> EmbeddingModelChanged:
        now = f"{active['model']} ({active['dimensions']} dimensions)" if active else "another model"
        if active is not None and active["mine"] == "building":
            return EmbeddingModelChanged(
                f"this process's model is still being built by `memorymesh reembed` (the stored vectors are "
                f"{now}'s): it serves once the switch is made"
            )
        return EmbeddingModelChanged(
            f"the stored vectors are now made by {now} (`memorymesh reembed` switched them): restart this process "
            "with that model configured"
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
        user_id: str | Keep | None = KEEP,
    ) -> None:
        return None  # archived_at, importance and user_id are columns of the row the search reads

    @storage_errors
    async def check(self) -> None:
        await self._require_active(self._database.pool)

    @storage_errors
    async def ids(self, tenant_id: str) -> set[uuid.UUID]:
        rows = await self._database.executor().fetch(
            "SELECT id FROM messages WHERE tenant_id = $1 AND embedding IS NOT NULL", tenant_id
        )
        return {r["id"] for r in rows}

    @storage_errors
    async def search(self, tenant_id: str, vector: Sequence[float], k: int, filters: SearchFilters) -> list[VectorHit]:
        # One round trip: the scan settings are the pool's (SEARCH_SETTINGS, set per connection).
        sql, params = search_statement(tenant_id, vector, k, filters, self._model_id)
        try:
            rows = await self._database.pool.fetch(sql, *params)
            if len(rows) < k:
                sql, params = search_statement(tenant_id, vector, k, filters, self._model_id, exact=True)
                rows = await self._database.pool.fetch(sql, *params)
        except asyncpg.PostgresError:  # a vector of another dimension, a stale plan: was the column switched?
            await self.check()
            raise
        if not rows:  # none, or none of this model's any more
            await self.check()
        # relaxed_order may hand rows back slightly out of order: sort them exactly.
        hits = [VectorHit(r["id"], float(r["similarity"])) for r in rows]
        hits.sort(key=lambda h: (-h.similarity, str(h.message_id)))
        return hits
