"""Full-text search over the messages in PostgreSQL, and the neighbours of a message in its conversation."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from adapters.postgres.database import Database, storage_errors
from adapters.postgres.rows import M_COLUMNS, to_message
from adapters.postgres.vector_index import filter_clause
from application.ports.filters import SearchFilters
from application.ports.text_search import KeywordHit, KeywordLimits, TextSearch
from domain.message import Message

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
ADJACENT = f"""
WITH pairs AS (
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
)
SELECT p.id AS lender, {M_COLUMNS} FROM pairs p
LEFT JOIN messages m ON m.tenant_id = $1 AND m.id IN (p.before, p.after)
ORDER BY p.id, m.created_at, m.id
"""

DEFAULT_KEYWORD_LIMITS = KeywordLimits()


class PgTextSearch(TextSearch):
    def __init__(self, database: Database, keyword_limits: KeywordLimits = DEFAULT_KEYWORD_LIMITS) -> None:
        self._database = database
        self._keyword_limits = keyword_limits
        self._common: OrderedDict[str, tuple[float, list[str]]] = OrderedDict()  # tenant: (read at, lexemes)

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
    async def adjacent(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Message]]:
        if not message_ids:
            return {}
        found: dict[uuid.UUID, list[Message]] = {}
        for row in await self._database.executor().fetch(ADJACENT, tenant_id, list(message_ids)):
            neighbours = found.setdefault(row["lender"], [])
            if row["id"] is not None:
                neighbours.append(to_message(row))
        return found
