"""The queue of messages waiting for a vector, in PostgreSQL.

The embedding queue lives on the rows themselves (see migration 0002): a claim is one
UPDATE over rows picked with FOR UPDATE SKIP LOCKED, so concurrent workers never hold
the same row, and a claim is a lease, so rows held by a dead worker come back by
themselves once it runs out. Which rows a claim picks is shared round-robin among the
tenants waiting (see TENANTS_WAITING).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from adapters.postgres.database import Database, storage_errors
from adapters.postgres.rows import M_COLUMNS, to_message
from adapters.postgres.statistics import PgStatisticsUpkeep
from application.ports.embedding_queue import (
    ClaimedMessage,
    EmbeddingClaim,
    EmbeddingQueue,
    EmbeddingRetry,
    QueueStats,
)
from domain.fair_claims import round_robin_shares
from domain.message import Message

# Rows locked in id order, as lock() does, so that a worker and a retention run or an
# erasure over overlapping rows wait for each other instead of deadlocking.
COMPLETE_EMBEDDING = f"""
UPDATE messages AS m
SET embedding_status = 'embedded', embedding_claim = NULL, embedding_error = NULL
FROM (SELECT id FROM messages WHERE embedding_claim = $1 AND id = ANY($2::uuid[]) AND embedding_status = 'pending'
      ORDER BY id FOR UPDATE) AS held
WHERE m.id = held.id
RETURNING {M_COLUMNS}
"""

# A claim goes round-robin over the tenants with messages ready (domain/fair_claims.py), in
# two statements. TENANTS_WAITING finds them in turn: those after the tenant the last claim
# served last, in tenant order, then from the first one round to it again; at most $2 (a
# batch of $2 serves no more), each with how many it has ready, counted no further than it
# could take. Each step to the next tenant is one descent of messages_embedding_tenant_ready
# (migration 0009), so a claim reads about as many index entries as it has tenants and
# messages to take, however long the queue. CLAIM_SHARES then takes each tenant's share,
# oldest ready first, skipping rows another worker holds.
READY = "embedding_status = 'pending' AND embedding_ready_at <= now()"
TENANTS_WAITING = f"""
WITH RECURSIVE after_cursor(tenant_id) AS (
    (SELECT tenant_id FROM messages WHERE {READY} AND tenant_id > $1 ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT m.tenant_id FROM messages m WHERE {READY} AND m.tenant_id > a.tenant_id ORDER BY m.tenant_id LIMIT 1)
    FROM after_cursor a WHERE a.tenant_id IS NOT NULL
),
from_start(tenant_id) AS (
    (SELECT tenant_id FROM messages WHERE {READY} ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT m.tenant_id FROM messages m WHERE {READY} AND m.tenant_id > s.tenant_id ORDER BY m.tenant_id LIMIT 1)
    FROM from_start s WHERE s.tenant_id < $1
),
turns AS MATERIALIZED (
    SELECT tenant_id, lap FROM (
        (SELECT tenant_id, 1 AS lap FROM after_cursor WHERE tenant_id IS NOT NULL LIMIT $2)
        UNION ALL
        (SELECT tenant_id, 2 AS lap FROM from_start WHERE tenant_id <= $1 LIMIT $2)
    ) AS both_laps
    ORDER BY lap, tenant_id LIMIT $2
)
SELECT t.tenant_id,
       (SELECT count(*) FROM (
            SELECT FROM messages m WHERE {READY} AND m.tenant_id = t.tenant_id
            ORDER BY m.embedding_ready_at  -- along the queue's index, not through all the tenant's messages
            LIMIT $2 - (SELECT count(*) FROM turns) + 1
       ) AS r) AS ready
FROM turns t ORDER BY t.lap, t.tenant_id
"""

# The claim's messages in round-robin order: each tenant's oldest first, tenants in turn.
CLAIM_SHARES = f"""
WITH picked AS (
    SELECT p.id, p.embedding_ready_at AS was_ready_at, s.turn
    FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS s(tenant_id, share, turn)
    CROSS JOIN LATERAL (
        SELECT id, embedding_ready_at FROM messages
        WHERE {READY} AND tenant_id = s.tenant_id
        ORDER BY embedding_ready_at
        LIMIT s.share
        FOR UPDATE SKIP LOCKED
    ) AS p
    LIMIT $5  -- the shares add up to the batch at most; said for the planner, which would join by reading the table
),
claimed AS (
    UPDATE messages AS m
    SET embedding_claim = $3, embedding_ready_at = now() + $4::interval, embedding_attempts = m.embedding_attempts + 1
    FROM picked WHERE m.id = picked.id
    RETURNING {M_COLUMNS}, m.embedding_attempts, picked.was_ready_at, picked.turn
)
SELECT * FROM claimed
ORDER BY row_number() OVER (PARTITION BY turn ORDER BY was_ready_at, id), turn
"""

RETRY_EMBEDDING = """
UPDATE messages AS m
SET embedding_claim = NULL,
    embedding_error = $3,
    embedding_status = CASE WHEN r.delay IS NULL THEN 'failed' ELSE 'pending' END,
    embedding_ready_at = CASE WHEN r.delay IS NULL THEN m.embedding_ready_at ELSE now() + r.delay END
FROM unnest($2::uuid[], $4::interval[]) AS r(id, delay)
WHERE m.id = r.id AND m.embedding_claim = $1 AND m.embedding_status = 'pending'
"""

# The sweeper's two statements. Since migration 0009 the pending rows' index leads with the
# tenant, so these read it whole, or one descent per tenant, when few of its rows match
# (14 ms at 100,000 pending: bench/results/queue_claims.md); before, a range of an index on
# embedding_ready_at alone, which claims must not be offered (see the migration).
FAIL_EXHAUSTED = """
UPDATE messages SET embedding_status = 'failed', embedding_claim = NULL, embedding_error = $2
WHERE embedding_status = 'pending' AND embedding_ready_at <= now() AND embedding_attempts >= $1
RETURNING id
"""
STALLED_EMBEDDINGS = """
SELECT count(*) FROM (
    SELECT 1 FROM messages WHERE embedding_status = 'pending' AND embedding_ready_at <= now() - $1::interval LIMIT $2
) AS stalled
"""

# Two scans, each over its own partial index: an IN ('pending', 'failed') can use neither
# and reads the whole table (seen in EXPLAIN at 200k rows).
QUEUE_STATS = """
SELECT pending.pending, pending.claimed, pending.oldest_pending_stored_at,
       (SELECT count(*) FROM messages WHERE embedding_status = 'failed') AS failed
FROM (
    SELECT count(*) FILTER (WHERE embedding_claim IS NULL OR embedding_ready_at <= now()) AS pending,
           count(*) FILTER (WHERE embedding_claim IS NOT NULL AND embedding_ready_at > now()) AS claimed,
           min(stored_at) AS oldest_pending_stored_at
    FROM messages
    WHERE embedding_status = 'pending'
) AS pending
"""

# Counting stalled work only needs to tell "some" from "none" and log a rough size.
STALLED_COUNT_LIMIT = 10_000


class PgEmbeddingQueue(EmbeddingQueue):
    def __init__(self, database: Database, statistics: PgStatisticsUpkeep | None = None) -> None:
        self._database = database
        self._statistics = statistics  # told how many rows each completion changed
        self._last_served = ""  # the tenant the last claim served last: the next one starts after it

    @storage_errors
    async def mark_embedded(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> None:
        await self._database.executor().execute(
            "UPDATE messages SET embedding_status = 'embedded', embedding_claim = NULL, embedding_error = NULL "
            "WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            tenant_id,
            list(message_ids),
        )

    @storage_errors
    async def claim_pending(self, limit: int, lease: timedelta) -> EmbeddingClaim | None:
        executor = self._database.executor()
        waiting = await executor.fetch(TENANTS_WAITING, self._last_served, limit)
        if not waiting:
            return None
        shares = round_robin_shares([r["ready"] for r in waiting], limit)
        claim_id = uuid.uuid4()
        rows = await executor.fetch(CLAIM_SHARES, [r["tenant_id"] for r in waiting], shares, claim_id, lease, limit)
        if not rows:
            return None
        self._last_served = rows[-1]["tenant_id"]
        claimed = [ClaimedMessage(to_message(r), r["embedding_attempts"]) for r in rows]
        return EmbeddingClaim(claim_id, claimed)

    @storage_errors
    async def complete_embedding(self, claim_id: uuid.UUID, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        rows = await self._database.executor().fetch(
            COMPLETE_EMBEDDING,
            claim_id,
            list(message_ids),
        )
        if self._statistics is not None:
            self._statistics.rows_written(len(rows))
        return [to_message(r) for r in rows]

    @storage_errors
    async def retry_embedding(self, claim_id: uuid.UUID, retries: Sequence[EmbeddingRetry], reason: str) -> None:
        await self._database.executor().execute(
            RETRY_EMBEDDING, claim_id, [r.message_id for r in retries], reason, [r.delay for r in retries]
        )

    @storage_errors
    async def release_claim(
        self, claim_id: uuid.UUID, message_ids: Sequence[uuid.UUID], delay: timedelta = timedelta(0)
    ) -> None:
        await self._database.executor().execute(
            "UPDATE messages SET embedding_claim = NULL, embedding_ready_at = now() + $3::interval, "
            "embedding_attempts = greatest(embedding_attempts - 1, 0) "
            "WHERE embedding_claim = $1 AND id = ANY($2::uuid[]) AND embedding_status = 'pending'",
            claim_id,
            list(message_ids),
            delay,
        )

    @storage_errors
    async def extend_claim(self, claim_id: uuid.UUID, lease: timedelta) -> None:
        await self._database.executor().execute(
            "UPDATE messages SET embedding_ready_at = now() + $2::interval "
            "WHERE embedding_claim = $1 AND embedding_status = 'pending'",
            claim_id,
            lease,
        )

    @storage_errors
    async def fail_exhausted(self, max_attempts: int, reason: str) -> int:
        rows = await self._database.executor().fetch(FAIL_EXHAUSTED, max_attempts, reason)
        return len(rows)

    @storage_errors
    async def requeue_failed(self, tenant_id: str | None) -> int:
        rows = await self._database.executor().fetch(
            "UPDATE messages SET embedding_status = 'pending', embedding_attempts = 0, embedding_error = NULL, "
            "embedding_claim = NULL, embedding_ready_at = now() "
            "WHERE embedding_status = 'failed' AND ($1::text IS NULL OR tenant_id = $1) RETURNING id",
            tenant_id,
        )
        return len(rows)

    @storage_errors
    async def stalled_embeddings(self, older_than: timedelta) -> int:
        count: int = await self._database.executor().fetchval(STALLED_EMBEDDINGS, older_than, STALLED_COUNT_LIMIT)
        return count

    @storage_errors
    async def queue_stats(self) -> QueueStats:
        row = await self._database.executor().fetchrow(QUEUE_STATS)
        assert row is not None  # an aggregate always returns one row
        return QueueStats(
            pending=row["pending"],
            claimed=row["claimed"],
            failed=row["failed"],
            oldest_pending_stored_at=row["oldest_pending_stored_at"],
        )
