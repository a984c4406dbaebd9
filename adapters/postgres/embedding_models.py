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

from adapters.postgres.database import CONNECTION_ERRORS, Database, init_connection, storage_errors
from adapters.postgres.rows import MESSAGE_COLUMNS, to_message
from application.ports.embedding_models import EmbeddingModel, EmbeddingModelChanged, EmbeddingModels, ModelSwitch
from application.ports.storage import StorageUnavailable
from domain.message import Message

logger = logging.getLogger(__name__)

UNRECORDED = "unrecorded model"  # vectors stored before models were recorded, in a dimension no longer configured
# How long a change to the messages table waits for running statements before giving up
# (and rerun): waiting longer would queue every later search and write behind it.
LOCK_TIMEOUT = "10s"

UNBUILT = """
SELECT {columns} FROM messages
WHERE embedding_status = 'embedded' AND embedding IS NOT NULL AND embedding_next IS NULL AND id > $1
ORDER BY id LIMIT $2
"""

PUT_BUILT = "UPDATE messages SET embedding_next = $3 WHERE id = $1 AND content = $2"


def changed(
    stored: EmbeddingModel, configured: EmbeddingModel, building: EmbeddingModel | None
) -> EmbeddingModelChanged:
    underway = f" (`memorymesh reembed` is building {building}'s vectors now)" if building else ""
    return EmbeddingModelChanged(
        f"the stored vectors were made by {stored}, but this process is configured for {configured}{underway}. "
        "Configure the model that made them again (MEMORY_EMBEDDING_PROVIDER, MEMORY_EMBEDDING_MODEL, "
        "MEMORY_GEMINI_MODEL, MEMORY_EMBEDDING_DIMENSIONS), or change models with `memorymesh reembed`, run with "
        "the new model configured (README: Changing the embedding model)"
    )


def lock_timeout(error: asyncpg.LockNotAvailableError, what: str) -> StorageUnavailable:
    return StorageUnavailable(
        f"could not {what} within {LOCK_TIMEOUT}: a long write or search holds the messages table. "
        "Nothing was changed; run `memorymesh reembed` again (work done so far is kept)"
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
                    row = await self._record_active(conn, model, model)
                building = await conn.fetchrow(
                    "SELECT id, model, dimensions FROM embedding_models WHERE state = 'building'"
                )
            stored = EmbeddingModel(row["model"], row["dimensions"])
            model_id: int = row["id"]
            if stored == model:
                return model_id
            target = EmbeddingModel(building["model"], building["dimensions"]) if building else None
            if target == model and building is not None:
                # Started ahead of the switch: not ready, and writing nothing, until the switch
                # makes this model the active one; then ready, without a restart.
                logger.warning("waiting for `memorymesh reembed` to switch to this model", extra={"model": str(model)})
                building_id: int = building["id"]
                return building_id
            raise changed(stored, model, target)

    async def _record_active(
        self, conn: Connection, configured: EmbeddingModel, assumed: EmbeddingModel | None
    ) -> asyncpg.Record:
        """The first record of a database made before models were recorded: `assumed` made
        its vectors if the column fits it (a service started on it is configured for the model
        it always ran with), an unknown model otherwise."""
        dimensions = await column_dimensions(conn, "embedding")
        name = assumed.name if assumed is not None and dimensions == assumed.dimensions else UNRECORDED
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
        try:
            async with self._database.pool.acquire() as conn, conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                await conn.execute("LOCK TABLE embedding_models IN SHARE ROW EXCLUSIVE MODE")
                if await conn.fetchval("SELECT count(*) FROM embedding_models WHERE state = 'active'") == 0:
                    # The model a reembed is for is by definition not known to have made them.
                    await self._record_active(conn, model, None)
                building = await conn.fetchrow(
                    "SELECT id, model, dimensions FROM embedding_models WHERE state = 'building'"
                )
                if building is not None:
                    same = EmbeddingModel(building["model"], building["dimensions"]) == model
                    if same and await column_dimensions(conn, "embedding_next") == model.dimensions:
                        logger.info("taking up an unfinished re-embedding", extra={"model": model.name})
                        return
                    await self._drop_build(conn, building["id"])
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
        except asyncpg.LockNotAvailableError as error:
            raise lock_timeout(error, "make room for the new vectors") from error

    @staticmethod
    async def _drop_build(conn: Connection, building_id: int) -> None:
        await conn.execute("DELETE FROM embedding_models WHERE id = $1", building_id)
        await conn.execute("DROP TRIGGER IF EXISTS messages_embedding_next_stale ON messages")
        await conn.execute("ALTER TABLE messages DROP COLUMN IF EXISTS embedding_next")  # and its index

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
            await conn.execute("SET maintenance_work_mem = '256MB'")  # the graph is built in memory: far faster
            # Concurrently: writes go on meanwhile. Archived rows are never searched (migration 0004).
            await conn.execute(
                "CREATE INDEX CONCURRENTLY messages_embedding_next_hnsw ON messages "
                "USING hnsw (embedding_next vector_cosine_ops) WHERE archived_at IS NULL"
            )
        finally:
            await conn.close()

    @asynccontextmanager
    async def switch(self, model: EmbeddingModel) -> AsyncIterator[ModelSwitch]:
        try:
            conn = await asyncpg.connect(self._database.dsn)
            await init_connection(conn)
        except CONNECTION_ERRORS as error:
            raise StorageUnavailable(f"the database is unavailable: {type(error).__name__}") from error
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                # Writers wait from here to the commit; searches go on reading the old vectors.
                # A vector written before the lock is in the old column only: the caller
                # builds it now (PgModelSwitch.unbuilt). One written after the commit lands in
                # the new column, and its process, which checks the record after writing,
                # finds its model retired and rolls it back (PgVectorIndex.upsert).
                await conn.execute("LOCK TABLE messages IN EXCLUSIVE MODE")
                yield PgModelSwitch(conn)
                await self._swap(conn, model)
            await conn.execute("ANALYZE messages")  # the planner's figures for the new column
        except asyncpg.LockNotAvailableError as error:
            raise lock_timeout(error, "switch models") from error
        except CONNECTION_ERRORS as error:
            raise StorageUnavailable(f"the database is unavailable: {type(error).__name__}") from error
        finally:
            await conn.close()

    @staticmethod
    async def _swap(conn: asyncpg.Connection, model: EmbeddingModel) -> None:
        """The new model's vectors become messages.embedding, and the new model the active one."""
        building = await conn.fetchval(
            "SELECT id FROM embedding_models WHERE state = 'building' AND model = $1 AND dimensions = $2",
            model.name,
            model.dimensions,
        )
        if building is None:
            raise EmbeddingModelChanged(f"no re-embedding with {model} is in progress: another run ended it")
        await conn.execute("UPDATE embedding_models SET state = 'retired', retired_at = now() WHERE state = 'active'")
        await conn.execute("UPDATE embedding_models SET state = 'active', activated_at = now() WHERE id = $1", building)
        await conn.execute("DROP TRIGGER messages_embedding_next_stale ON messages")
        await conn.execute("ALTER TABLE messages RENAME COLUMN embedding TO embedding_retired")
        await conn.execute("ALTER TABLE messages RENAME COLUMN embedding_next TO embedding")
        await conn.execute("ALTER INDEX messages_embedding_hnsw RENAME TO messages_embedding_retired_hnsw")
        await conn.execute("ALTER INDEX messages_embedding_next_hnsw RENAME TO messages_embedding_hnsw")
        await conn.execute("ALTER TABLE messages DROP COLUMN embedding_retired")  # and its index
        logger.info("switched the stored vectors to another model", extra={"model": str(model)})

    @storage_errors
    async def abandon_build(self) -> bool:
        try:
            async with self._database.pool.acquire() as conn, conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                building = await conn.fetchval("SELECT id FROM embedding_models WHERE state = 'building'")
                if building is None:
                    return False
                await self._drop_build(conn, building)
                return True
        except asyncpg.LockNotAvailableError as error:
            raise lock_timeout(error, "drop the unfinished build") from error


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
