"""Messages in PostgreSQL: the system of record, and the queue of messages waiting for a vector.

The embedding queue lives on the rows themselves (see migration 0002): a claim is one
UPDATE over rows picked with FOR UPDATE SKIP LOCKED, so concurrent workers never hold
the same row, and a claim is a lease, so rows held by a dead worker come back by
themselves once it runs out. Which rows a claim picks is shared round-robin among the
tenants waiting (see TENANTS_WAITING).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from adapters.postgres.coalesce import InsertCoalescer
from adapters.postgres.database import Database, storage_errors
from adapters.postgres.instants import aware, aware_or_none
from adapters.postgres.vector_index import filter_clause
from application.ports.embedding_queue import ClaimedMessage, EmbeddingClaim, EmbeddingRetry, QueueStats
from application.ports.filters import SearchFilters
from application.ports.messages import MessageRepository, Position
from application.ports.storage import StorageUnavailable
from application.ports.text_search import KeywordHit, KeywordLimits
from domain.fair_claims import round_robin_shares
from domain.message import EmbeddingStatus, Message, Role
from domain.retention import RetentionFacts, RetentionPolicy

MESSAGE_COLUMNS = (
    "id, tenant_id, conversation_id, role, content, metadata, created_at, importance, "
    "explicit_importance, embedding_status, archived_at, client_message_id, embedding_error, pinned, restored_at"
)

# One row per message, sent as one array per column: a batch is one statement.
INSERT_MESSAGES = f"""
INSERT INTO messages ({MESSAGE_COLUMNS})
SELECT id, tenant_id, conversation_id, role, content, metadata::jsonb, created_at, importance,
       explicit_importance, embedding_status, archived_at, client_message_id, NULL, pinned, NULL
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
            $8::float8[], $9::float8[], $10::text[], $11::timestamptz[], $12::text[], $13::bool[])
     AS t(id, tenant_id, conversation_id, role, content, metadata, created_at, importance,
          explicit_importance, embedding_status, archived_at, client_message_id, pinned)
ON CONFLICT (tenant_id, client_message_id) WHERE client_message_id IS NOT NULL DO NOTHING
RETURNING id
"""

# MESSAGE_COLUMNS of the row aliased m (in an UPDATE ... FROM, a bare name may be ambiguous).
M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))

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

UPDATE_MESSAGE = f"""
UPDATE messages SET
    content = $3, metadata = $4, importance = $5, explicit_importance = $6, pinned = $7,
    embedding_status = $8, updated_at = now(),
    embedding_claim = CASE WHEN $9 THEN NULL ELSE embedding_claim END,
    embedding_attempts = CASE WHEN $9 THEN 0 ELSE embedding_attempts END,
    embedding_ready_at = CASE WHEN $9 THEN now() ELSE embedding_ready_at END,
    embedding_error = CASE WHEN $9 THEN NULL ELSE embedding_error END
WHERE tenant_id = $1 AND id = $2
RETURNING {MESSAGE_COLUMNS}
"""

# The retention rule (domain/retention.py) as a filter over the tenant's oldest messages:
# it narrows the walk to what decide() may act on, and decide() has the last word. The
# range on created_at (widest cutoff) lets the walk use messages_tenant_created; a
# restore only makes a message younger, so the range stays a superset.
RETENTION_WHERE = """
tenant_id = $1 AND created_at < $2
AND NOT pinned AND explicit_importance IS DISTINCT FROM 1.0 AND importance < $3 AND role <> ALL($4::text[])
AND (($5::timestamptz IS NOT NULL AND archived_at IS NULL AND greatest(created_at, restored_at) < $5)
     OR ($6::timestamptz IS NOT NULL AND greatest(created_at, restored_at) < $6))
"""
RETENTION_COLUMNS = "id, role, created_at, importance, pinned, archived_at, restored_at"

DEFAULT_KEYWORD_LIMITS = KeywordLimits()
INSERT_ATTEMPTS = 3  # a duplicate whose collided row vanishes is inserted afresh on the next try

# Counting stalled work only needs to tell "some" from "none" and log a rough size.
STALLED_COUNT_LIMIT = 10_000


def to_message(row: asyncpg.Record) -> Message:
    return Message(
        id=row["id"],
        tenant_id=row["tenant_id"],
        conversation_id=row["conversation_id"],
        role=Role(row["role"]),
        content=row["content"],
        metadata=row["metadata"],
        created_at=aware(row["created_at"]),
        importance=row["importance"],
        explicit_importance=row["explicit_importance"],
        embedding_status=EmbeddingStatus(row["embedding_status"]),
        archived_at=aware_or_none(row["archived_at"]),
        client_message_id=row["client_message_id"],
        embedding_error=row["embedding_error"],
        pinned=row["pinned"],
        restored_at=aware_or_none(row["restored_at"]),
    )


def to_facts(row: asyncpg.Record) -> RetentionFacts:
    """A row of RETENTION_COLUMNS as the retention rule reads it."""
    return RetentionFacts(
        message_id=row["id"],
        role=Role(row["role"]),
        created_at=aware(row["created_at"]),
        importance=row["importance"],
        pinned=row["pinned"],
        archived_at=aware_or_none(row["archived_at"]),
        restored_at=aware_or_none(row["restored_at"]),
    )


# Keyword search: the query's words, stemmed as content_tsv is, joined with OR, so that a
# message sharing any of them is a candidate, and ts_rank_cd puts those sharing more (and
# closer) first. What one search costs is bounded, whatever a tenant has stored or asks:
# - The query is built from quoted lexemes only: nothing a client writes is read as tsquery
#   syntax (`example.com/deals!`, `apple:*`).
# - At most `max_terms` distinct words of the query are used, in the order they come.
# - A word that is in many of the tenant's messages says little about which one is meant, and
#   ranking every message that holds "go" or "2026" cost 124 ms at 100,000 messages
#   (bench/results/search.md). So a message is a candidate when it holds one of the query's
#   rarer words, or all of its common ones (when there are two or more); every word still
#   counts in its rank. A query of common words only matches on any of them. Which words are
#   common is read from the tenant's own newest messages, never from statistics over the whole
#   table: one tenant's writes must not change another's results.
# - At most `max_ranked` candidates are ranked: the newest, when more match.
QUOTED = r"'''' || replace(replace({word}, '\', '\\'), '''', '''''') || ''''"  # a lexeme as tsquery reads it


def any_of(words: str, operator: str = "|") -> str:
    """SQL for the tsquery of an array of lexemes joined by `operator` (empty: matches nothing)."""
    quoted = QUOTED.format(word="w")
    return f"array_to_string(ARRAY(SELECT {quoted} FROM unnest({words}) AS w), ' {operator} ')::tsquery"


KEYWORD_SEARCH = f"""
WITH words AS (
    SELECT ARRAY(SELECT w.lexeme FROM unnest(to_tsvector('english', $1)) AS w
                 ORDER BY w.positions[1], w.lexeme LIMIT $4) AS every
),
split AS (
    SELECT every,
           ARRAY(SELECT unnest(every) EXCEPT SELECT unnest($3::text[])) AS rare,
           ARRAY(SELECT unnest(every) INTERSECT SELECT unnest($3::text[])) AS common
    FROM words
),
q AS (
    SELECT {any_of("every")} AS ranked,
           CASE WHEN cardinality(rare) = 0 THEN {any_of("every")}
                WHEN cardinality(common) < 2 THEN {any_of("rare")}
                ELSE {any_of("rare")} || {any_of("common", "&")}
           END AS matched
    FROM split
),
candidates AS (
    SELECT id, content_tsv FROM messages, q
    WHERE {{where}} AND content_tsv @@ q.matched
    ORDER BY created_at DESC LIMIT $5
)
SELECT id, ts_rank_cd(content_tsv, q.ranked) AS rank FROM candidates, q
ORDER BY rank DESC, id LIMIT $2
"""
# The tenant's common words: those in at least COMMON_SHARE of its newest COMMON_SAMPLE
# messages, and in at least COMMON_MIN_MESSAGES of them (so a small tenant has none: ranking
# all of its matches is cheap). Read again every COMMON_WORDS_SECONDS.
COMMON_SHARE = 0.01
COMMON_SAMPLE = 2_000
COMMON_MIN_MESSAGES = 10
COMMON_WORDS_SECONDS = 300.0
COMMON_WORDS_TENANTS = 10_000  # tenants whose common words a process keeps
TENANT_COMMON_WORDS = """
WITH sample AS (
    SELECT content_tsv FROM messages WHERE tenant_id = $1 AND archived_at IS NULL
    ORDER BY created_at DESC LIMIT $2
)
SELECT coalesce(array_agg(word), '{}') FROM (
    SELECT word FROM sample, unnest(tsvector_to_array(content_tsv)) AS word
    GROUP BY word HAVING count(*) >= greatest($3, $4 * (SELECT count(*) FROM sample))
) AS common
"""

# Each neighbour is one step of the (tenant_id, conversation_id, created_at, id) index.
ADJACENT = """
SELECT c.id, before.id AS before, after.id AS after FROM messages c
LEFT JOIN LATERAL (
    SELECT x.id FROM messages x
    WHERE x.tenant_id = c.tenant_id AND x.conversation_id = c.conversation_id AND x.archived_at IS NULL
      AND (x.created_at, x.id) < (c.created_at, c.id)
    ORDER BY x.created_at DESC, x.id DESC LIMIT 1
) before ON true
LEFT JOIN LATERAL (
    SELECT x.id FROM messages x
    WHERE x.tenant_id = c.tenant_id AND x.conversation_id = c.conversation_id AND x.archived_at IS NULL
      AND (x.created_at, x.id) > (c.created_at, c.id)
    ORDER BY x.created_at, x.id LIMIT 1
) after ON true
WHERE c.tenant_id = $1 AND c.id = ANY($2::uuid[])
"""


class PgMessageRepository(MessageRepository):
    def __init__(self, database: Database, keyword_limits: KeywordLimits = DEFAULT_KEYWORD_LIMITS) -> None:
        self._database = database
        self._keyword_limits = keyword_limits
        self._coalescer = InsertCoalescer(self._insert)
        self._common: OrderedDict[str, tuple[float, list[str]]] = OrderedDict()  # tenant: (read at, lexemes)
        self._last_served = ""  # the tenant the last claim served last: the next one starts after it

    async def add(self, message: Message) -> None:
        await self.add_many([message])

    async def add_many(self, messages: Sequence[Message]) -> list[Message]:
        if self._database.in_transaction():  # the caller's transaction decides what commits with it
            return await self._insert(messages)
        return await self._coalescer.add(messages)

    @storage_errors
    async def _insert(self, messages: Sequence[Message]) -> list[Message]:
        """Insert and look up the duplicates in one transaction: a failure leaves nothing
        behind, so a caller told to retry has not been stored (nor any caller grouped with it)."""
        stored: dict[uuid.UUID, Message] = {}
        async with self._database.transaction():
            pending = list(messages)
            for _ in range(INSERT_ATTEMPTS):
                stored.update(await self._insert_or_find(pending))
                pending = [m for m in pending if m.id not in stored]
                if not pending:
                    return [stored[m.id] for m in messages]
        # Each try, the row a duplicate collided with was deleted before it could be read.
        raise StorageUnavailable("concurrent writes kept changing this message; retry the request")

    async def _insert_or_find(self, messages: Sequence[Message]) -> dict[uuid.UUID, Message]:
        """What is now stored under each message's id: itself, or the row its client_message_id
        collided with; a message whose collided row is gone meanwhile is left out."""
        executor = self._database.executor()
        inserted = {
            row["id"]
            for row in await executor.fetch(
                INSERT_MESSAGES,
                [m.id for m in messages],
                [m.tenant_id for m in messages],
                [m.conversation_id for m in messages],
                [m.role.value for m in messages],
                [m.content for m in messages],
                [json.dumps(m.metadata) for m in messages],
                [m.created_at for m in messages],
                [m.importance for m in messages],
                [m.explicit_importance for m in messages],
                [m.embedding_status.value for m in messages],
                [m.archived_at for m in messages],
                [m.client_message_id for m in messages],
                [m.pinned for m in messages],
            )
        }
        outcome = {m.id: m for m in messages if m.id in inserted}
        duplicates = [m for m in messages if m.id not in inserted]
        if duplicates:
            rows = await executor.fetch(
                f"SELECT {MESSAGE_COLUMNS} FROM messages "
                "WHERE (tenant_id, client_message_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                [m.tenant_id for m in duplicates],
                [m.client_message_id for m in duplicates],
            )
            found = {(r["tenant_id"], r["client_message_id"]): to_message(r) for r in rows}
            for message in duplicates:
                if (existing := found.get((message.tenant_id, message.client_message_id))) is not None:
                    outcome[message.id] = existing
        return outcome

    @storage_errors
    async def get(self, tenant_id: str, message_id: uuid.UUID) -> Message | None:
        row = await self._database.executor().fetchrow(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id = $2", tenant_id, message_id
        )
        return to_message(row) if row is not None else None

    @storage_errors
    async def get_many(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        rows = await self._database.executor().fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            tenant_id,
            list(message_ids),
        )
        return [to_message(r) for r in rows]

    @storage_errors
    async def mark_embedded(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> None:
        await self._database.executor().execute(
            "UPDATE messages SET embedding_status = 'embedded', embedding_claim = NULL, embedding_error = NULL "
            "WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            tenant_id,
            list(message_ids),
        )

    @storage_errors
    async def keyword_search(self, tenant_id: str, query: str, k: int, filters: SearchFilters) -> list[KeywordHit]:
        limits = self._keyword_limits
        params: list[Any] = [query, k, await self._common_words(tenant_id), limits.max_terms, limits.max_ranked]
        where = filter_clause(tenant_id, filters, params, vectors=False)
        rows = await self._database.executor().fetch(KEYWORD_SEARCH.format(where=where), *params)
        return [KeywordHit(r["id"], float(r["rank"])) for r in rows]

    async def _common_words(self, tenant_id: str) -> list[str]:
        """The tenant's common lexemes, kept COMMON_WORDS_SECONDS for the COMMON_WORDS_TENANTS
        tenants searched last."""
        now = time.monotonic()
        cached = self._common.get(tenant_id)
        if cached is None or now - cached[0] > COMMON_WORDS_SECONDS:
            words = await self._database.executor().fetchval(
                TENANT_COMMON_WORDS, tenant_id, COMMON_SAMPLE, COMMON_MIN_MESSAGES, COMMON_SHARE
            )
            cached = (now, list(words))
            self._common[tenant_id] = cached
            while len(self._common) > COMMON_WORDS_TENANTS:
                self._common.popitem(last=False)
        self._common.move_to_end(tenant_id)
        return cached[1]

    @storage_errors
    async def adjacent(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        if not message_ids:
            return {}
        rows = await self._database.executor().fetch(ADJACENT, tenant_id, list(message_ids))
        return {r["id"]: [n for n in (r["before"], r["after"]) if n is not None] for r in rows}

    @storage_errors
    async def lock(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        if not message_ids:
            return []
        # In id order, so that two lockers of overlapping sets cannot deadlock.
        rows = await self._database.executor().fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id = ANY($2::uuid[]) "
            "ORDER BY id FOR UPDATE",
            tenant_id,
            list(message_ids),
        )
        return [to_message(r) for r in rows]

    @storage_errors
    async def update(self, message: Message, *, reembed: bool) -> Message | None:
        row = await self._database.executor().fetchrow(
            UPDATE_MESSAGE,
            message.tenant_id,
            message.id,
            message.content,
            message.metadata,
            message.importance,
            message.explicit_importance,
            message.pinned,
            message.embedding_status.value,
            reembed,
        )
        return None if row is None else to_message(row)

    @storage_errors
    async def delete(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        if not message_ids:
            return []
        rows = await self._database.executor().fetch(
            "DELETE FROM messages WHERE tenant_id = $1 AND id = ANY($2::uuid[]) RETURNING id",
            tenant_id,
            list(message_ids),
        )
        return [r["id"] for r in rows]

    @storage_errors
    async def archive(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        if not message_ids:
            return []
        rows = await self._database.executor().fetch(
            "UPDATE messages SET archived_at = $3 "
            "WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND archived_at IS NULL RETURNING id",
            tenant_id,
            list(message_ids),
            at,
        )
        return [r["id"] for r in rows]

    @storage_errors
    async def restore(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        rows = await self._database.executor().fetch(
            "UPDATE messages SET archived_at = NULL, restored_at = $3 "
            "WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND archived_at IS NOT NULL RETURNING id",
            tenant_id,
            list(message_ids),
            at,
        )
        return [r["id"] for r in rows]

    @storage_errors
    async def conversation_page(
        self, tenant_id: str, conversation_id: str, after: Position | None, limit: int, include_archived: bool
    ) -> list[Message]:
        archived = "" if include_archived else " AND archived_at IS NULL"
        where = f"tenant_id = $1 AND conversation_id = $2{archived}"
        if after is None:
            rows = await self._database.executor().fetch(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} ORDER BY created_at, id LIMIT $3",
                tenant_id,
                conversation_id,
                limit,
            )
        else:
            rows = await self._database.executor().fetch(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} AND (created_at, id) > ($4, $5) "
                "ORDER BY created_at, id LIMIT $3",
                tenant_id,
                conversation_id,
                limit,
                after.created_at,
                after.message_id,
            )
        return [to_message(r) for r in rows]

    @storage_errors
    async def message_ids(self, tenant_id: str, conversation_id: str | None, limit: int) -> list[uuid.UUID]:
        rows = await self._database.executor().fetch(
            "SELECT id FROM messages WHERE tenant_id = $1 AND ($2::text IS NULL OR conversation_id = $2) LIMIT $3",
            tenant_id,
            conversation_id,
            limit,
        )
        return [r["id"] for r in rows]

    @staticmethod
    def _retention_args(tenant_id: str, policy: RetentionPolicy, now: datetime) -> list[object]:
        archive = policy.cutoff(policy.archive_after_days, now)
        delete = policy.cutoff(policy.delete_after_days, now)
        widest = max((c for c in (archive, delete) if c is not None), default=None)
        return [
            tenant_id,
            widest,
            policy.importance_threshold,
            sorted(r.value for r in policy.protected_roles),
            archive,
            delete,
        ]

    @storage_errors
    async def retention_candidates(
        self, tenant_id: str, policy: RetentionPolicy, now: datetime, after: Position | None, limit: int
    ) -> list[RetentionFacts]:
        args = self._retention_args(tenant_id, policy, now)
        if args[1] is None:  # the policy neither archives nor deletes
            return []
        keyset = "" if after is None else " AND (created_at, id) > ($8, $9)"
        extra = [] if after is None else [after.created_at, after.message_id]
        rows = await self._database.executor().fetch(
            f"SELECT {RETENTION_COLUMNS} FROM messages WHERE {RETENTION_WHERE}{keyset} "
            "ORDER BY created_at, id LIMIT $7",
            *args,
            limit,
            *extra,
        )
        return [to_facts(r) for r in rows]

    @storage_errors
    async def count_retention_candidates(self, tenant_id: str, policy: RetentionPolicy, now: datetime) -> int:
        args = self._retention_args(tenant_id, policy, now)
        if args[1] is None:
            return 0
        count: int = await self._database.executor().fetchval(
            f"SELECT count(*) FROM messages WHERE {RETENTION_WHERE}", *args
        )
        return count

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

    @storage_errors
    async def tenants(self) -> list[str]:
        rows = await self._database.executor().fetch("SELECT DISTINCT tenant_id FROM messages ORDER BY tenant_id")
        return [r["tenant_id"] for r in rows]

    @storage_errors
    async def embedded_page(self, tenant_id: str, after: uuid.UUID | None, limit: int) -> list[Message]:
        rows = await self._database.executor().fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND embedding_status = 'embedded' "
            "AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
            tenant_id,
            after,
            limit,
        )
        return [to_message(r) for r in rows]

    async def check(self) -> None:
        try:
            await self._database.pool.fetchval("SELECT 1", timeout=2.0)
        except Exception as error:  # readiness reports any failure, whatever its kind
            raise StorageUnavailable(f"the database does not answer: {type(error).__name__}: {error}") from error
