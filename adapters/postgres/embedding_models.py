"""Which model made the stored vectors, and `memorymesh reembed`'s change to another.

messages.embedding holds the active model's vectors only. A change builds the new
model's vectors in messages.embedding_next (with an HNSW index of its own) while search
keeps reading messages.embedding, then swaps the columns in one transaction that also
marks the new model active (see migration 0006). Every vector write and every vector
search checks, in its own transaction or statement, that its process's model is still
the active one, so a process left on the old model never mixes its vectors in.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from adapters.postgres.database import Database, storage_errors
from adapters.postgres.message_repository import MESSAGE_COLUMNS, to_message
from application.ports import (
    EmbeddingModel,
    EmbeddingModelChanged,
    EmbeddingModels,
    ModelSwitch,
    StorageUnavailable,
)
from domain.message import Message

logger = logging.getLogger(__name__)

UNRECORDED = "unrecorded model"  # vectors stored before models were recorded, in a dimension no longer configured
SWITCH_LOCK_TIMEOUT = "10s"  # the switch waits this long for running writes; rerun `reembed` if it gives up

UNBUILT = """
SELECT {columns} FROM messages
WHERE embedding_status = 'embedded' AND embedding IS NOT NULL AND embedding_next IS NULL AND id > $1
ORDER BY id LIMIT $2
"""

PUT_BUILT = "UPDATE messages SET embedding_next = $3 WHERE id = $1 AND content = $2"


def changed(stored: EmbeddingModel, configured: EmbeddingModel) -> EmbeddingModelChanged:
    return EmbeddingModelChanged(
        f"the stored vectors were made by {stored}, but this process is configured for {configured}. "
        "Configure the model that made them again (MEMORY_EMBEDDING_PROVIDER, MEMORY_EMBEDDING_MODEL, "
        "MEMORY_GEMINI_MODEL, MEMORY_EMBEDDING_DIMENSIONS), or change models with `memorymesh reembed` run with "
        "the new model configured: it re-embeds every message while the service keeps answering, then switches over"
    )


Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


async def column_dimensions(conn: Connection, column: str) -> int | None:
    dimensions: int | None = await conn.fetchval(
        "SELECT atttypmod FROM pg_attribute "
        "WHERE attrelid = 'messages'::regclass AND attname = $1 AND NOT attisdropped",
        column,
    )
    return dimensions


class PgEmbeddingModels(EmbeddingModels):
    def __init__(self, database: Database) -> None:
        self._database = database

    @storage_errors
    async def claim(self, model: EmbeddingModel) -> int:
        async with self._database.pool.acquire() as conn:
            async with conn.transaction():
                # Two processes starting on a database with no record: one records it.
                await conn.execute("LOCK TABLE embedding_models IN SHARE ROW EXCLUSIVE MODE")
                row = await conn.fetchrow("SELECT id, model, dimensions FROM embedding_models WHERE state = 'active'")
                if row is None:
                    row = await self._record_active(conn, model)
            stored = EmbeddingModel(row["model"], row["dimensions"])
            if stored != model:
                raise changed(stored, model)
            model_id: int = row["id"]
            return model_id

    async def _record_active(self, conn: Connection, configured: EmbeddingModel) -> asyncpg.Record:
        """The first record: the configured model, if the vector column fits it (a database
        made before models were recorded holds the vectors of the model it was run with)."""
        dimensions = await column_dimensions(conn, "embedding")
        name = configured.name if dimensions == configured.dimensions else UNRECORDED
        logger.info("recorded the model of the stored vectors", extra={"model": name, "dimensions": dimensions})
        row = await conn.fetchrow(
            "INSERT INTO embedding_models (model, dimensions, state, activated_at) VALUES ($1, $2, 'active', now()) "
            "RETURNING id, model, dimensions",
            name,
            dimensions,
        )
        assert row is not None  # INSERT ... RETURNING hands back the row
        return row

    @storage_errors
    async def active(self) -> EmbeddingModel | None:
        row = await self._database.pool.fetchrow(
            "SELECT model, dimensions FROM embedding_models WHERE state = 'active'"
        )
        return EmbeddingModel(row["model"], row["dimensions"]) if row else None

    @storage_errors
    async def start_build(self, model: EmbeddingModel) -> None:
        async with self._database.pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE embedding_models IN SHARE ROW EXCLUSIVE MODE")
            if await conn.fetchval("SELECT count(*) FROM embedding_models WHERE state = 'active'") == 0:
                await self._record_active(conn, model)
            building = await conn.fetchrow(
                "SELECT id, model, dimensions FROM embedding_models WHERE state = 'building'"
            )
            if building is not None:
                same = EmbeddingModel(building["model"], building["dimensions"]) == model
                if same and await column_dimensions(conn, "embedding_next") == model.dimensions:
                    logger.info("taking up an unfinished re-embedding", extra={"model": model.name})
                    return
                await conn.execute("DELETE FROM embedding_models WHERE id = $1", building["id"])
            await conn.execute("DROP TRIGGER IF EXISTS messages_embedding_next_stale ON messages")
            await conn.execute("ALTER TABLE messages DROP COLUMN IF EXISTS embedding_next")  # and its index
            await conn.execute(
                "INSERT INTO embedding_models (model, dimensions, state) VALUES ($1, $2, 'building')",
                model.name,
                model.dimensions,
            )
            await conn.execute(f"ALTER TABLE messages ADD COLUMN embedding_next vector({int(model.dimensions)})")
            await conn.execute(
                "CREATE TRIGGER messages_embedding_next_stale BEFORE UPDATE OF content ON messages FOR EACH ROW "
                "WHEN (OLD.content IS DISTINCT FROM NEW.content) EXECUTE FUNCTION memorymesh_clear_embedding_next()"
            )

    @storage_errors
    async def unbuilt(self, after: uuid.UUID | None, limit: int) -> list[Message]:
        rows = await self._database.pool.fetch(
            UNBUILT.format(columns=MESSAGE_COLUMNS), after or uuid.UUID(int=0), limit
        )
        return [to_message(r) for r in rows]

    @storage_errors
    async def count_unbuilt(self) -> int:
        count: int = await self._database.pool.fetchval(
            "SELECT count(*) FROM messages "
            "WHERE embedding_status = 'embedded' AND embedding IS NOT NULL AND embedding_next IS NULL"
        )
        return count

    @storage_errors
    async def put_built(self, vectors: Sequence[tuple[Message, list[float]]]) -> int:
        async with self._database.pool.acquire() as conn:
            return await put_built(conn, vectors)

    @storage_errors
    async def index_build(self) -> None:
        # A connection of its own: CREATE INDEX CONCURRENTLY runs outside any transaction,
        # and its memory setting must not stay on a pooled connection.
        conn = await asyncpg.connect(self._database.dsn)
        try:
            valid = await conn.fetchval(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('messages_embedding_next_hnsw')"
            )
            if valid:
                return
            if valid is False:  # an earlier build was interrupted: its index is unusable
                await conn.execute("DROP INDEX CONCURRENTLY messages_embedding_next_hnsw")
            await conn.execute("SET maintenance_work_mem = '512MB'")  # the graph is built in memory: far faster
            # Concurrently: writes go on meanwhile. Archived rows are never searched (migration 0004).
            await conn.execute(
                "CREATE INDEX CONCURRENTLY messages_embedding_next_hnsw ON messages "
                "USING hnsw (embedding_next vector_cosine_ops) WHERE archived_at IS NULL"
            )
        finally:
            await conn.close()

    @asynccontextmanager
    async def switch(self) -> AsyncIterator[ModelSwitch]:
        conn = await asyncpg.connect(self._database.dsn)
        try:
            await self._database_codecs(conn)
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{SWITCH_LOCK_TIMEOUT}'")
                # Writers wait from here to the commit; searches go on reading the old vectors.
                # A vector written before the lock is in the old column only: the caller
                # builds it now (PgModelSwitch.unbuilt). One written after the commit lands in
                # the new column, and its process, which checks the record after writing,
                # finds its model retired and rolls it back (PgVectorIndex.upsert).
                await conn.execute("LOCK TABLE messages IN EXCLUSIVE MODE")
                yield PgModelSwitch(conn)
                await self._swap(conn)
        except asyncpg.LockNotAvailableError as error:
            raise StorageUnavailable(
                f"could not hold writes off within {SWITCH_LOCK_TIMEOUT}: a long write or search holds the messages "
                "table. Nothing was switched; the new vectors are kept"
            ) from error
        finally:
            await conn.close()

    @staticmethod
    async def _swap(conn: asyncpg.Connection) -> None:
        """The new model's vectors become messages.embedding, and the new model the active one."""
        await conn.execute("DROP TRIGGER messages_embedding_next_stale ON messages")
        await conn.execute("UPDATE embedding_models SET state = 'retired', retired_at = now() WHERE state = 'active'")
        switched = await conn.fetchval(
            "UPDATE embedding_models SET state = 'active', activated_at = now() "
            "WHERE state = 'building' RETURNING model"
        )
        if switched is None:
            raise EmbeddingModelChanged("no re-embedding is in progress: another `memorymesh reembed` ended it")
        await conn.execute("ALTER TABLE messages RENAME COLUMN embedding TO embedding_retired")
        await conn.execute("ALTER TABLE messages RENAME COLUMN embedding_next TO embedding")
        await conn.execute("ALTER INDEX messages_embedding_hnsw RENAME TO messages_embedding_retired_hnsw")
        await conn.execute("ALTER INDEX messages_embedding_next_hnsw RENAME TO messages_embedding_hnsw")
        await conn.execute("ALTER TABLE messages DROP COLUMN embedding_retired")  # and its index
        logger.info("switched the stored vectors to another model", extra={"model": switched})

    @storage_errors
    async def abandon_build(self) -> bool:
        async with self._database.pool.acquire() as conn, conn.transaction():
            dropped = await conn.fetchval("DELETE FROM embedding_models WHERE state = 'building' RETURNING id")
            await conn.execute("DROP TRIGGER IF EXISTS messages_embedding_next_stale ON messages")
            await conn.execute("ALTER TABLE messages DROP COLUMN IF EXISTS embedding_next")  # and its index
        return dropped is not None

    @staticmethod
    async def _database_codecs(conn: asyncpg.Connection) -> None:
        from adapters.postgres.database import init_connection

        await init_connection(conn)


class PgModelSwitch(ModelSwitch):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def unbuilt(self) -> list[Message]:
        rows = await self._conn.fetch(UNBUILT.format(columns=MESSAGE_COLUMNS), uuid.UUID(int=0), 2**31 - 1)
        return [to_message(r) for r in rows]

    async def put_built(self, vectors: Sequence[tuple[Message, list[float]]]) -> int:
        return await put_built(self._conn, vectors)

    async def requeue(self, message_ids: Sequence[uuid.UUID]) -> None:
        await self._conn.execute(
            "UPDATE messages SET embedding_status = 'pending', embedding_ready_at = now(), embedding_attempts = 0 "
            "WHERE id = ANY($1::uuid[])",
            list(message_ids),
        )


async def put_built(conn: Connection, vectors: Sequence[tuple[Message, list[float]]]) -> int:
    if not vectors:
        return 0
    await conn.executemany(PUT_BUILT, [(m.id, m.content, list(v)) for m, v in vectors])
    stored: int = await conn.fetchval(
        "SELECT count(*) FROM messages WHERE id = ANY($1::uuid[]) AND embedding_next IS NOT NULL",
        [m.id for m, _ in vectors],
    )
    return stored
