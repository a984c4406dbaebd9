"""The tenant and conversation listings in PostgreSQL, as skip-scans over the messages indexes.

`SELECT DISTINCT tenant_id FROM messages` reads every row (or every index entry): a million
messages for a page of ten tenants. A skip-scan instead descends the index once per distinct
value: a recursive CTE whose each step asks for the first entry after the last value found
(`ORDER BY ... LIMIT 1`, one index descent, O(log n)). So a page of `limit` values costs about
`limit + 1` descents, whatever the number of messages behind each value. PostgreSQL 18 plans a
skip scan of its own for some queries; the CTE does not depend on it.
"""

from __future__ import annotations

from adapters.postgres.database import Database, storage_errors
from adapters.postgres.instants import aware
from application.ports.directory import ConversationSummary, TenantDirectory

# Each step is one descent of an index whose leading column is tenant_id (messages_tenant_created
# or messages_tenant_conversation_created, whichever the planner finds cheaper). `n` bounds the
# recursion by the page, so it stops at `limit` values even with more to come.
TENANTS = """
WITH RECURSIVE found (tenant_id, n) AS (
    (SELECT tenant_id, 1 FROM messages WHERE tenant_id > $1 ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT m.tenant_id FROM messages m WHERE m.tenant_id > found.tenant_id ORDER BY m.tenant_id LIMIT 1),
           found.n + 1
    FROM found
    WHERE found.tenant_id IS NOT NULL AND found.n < $2
)
SELECT tenant_id FROM found WHERE tenant_id IS NOT NULL ORDER BY tenant_id
"""

# The page's conversation ids, one descent of messages_tenant_conversation_created
# (tenant_id, conversation_id, created_at, id) each; then each one's figures, read from its own
# range of that index (the archived count needs its rows): the work is `limit` descents plus the
# messages of the conversations listed, never the tenant's other conversations.
CONVERSATIONS = """
WITH RECURSIVE found (conversation_id, n) AS (
    (SELECT conversation_id, 1 FROM messages WHERE tenant_id = $1 AND conversation_id > $2
     ORDER BY conversation_id LIMIT 1)
    UNION ALL
    SELECT (SELECT m.conversation_id FROM messages m
            WHERE m.tenant_id = $1 AND m.conversation_id > found.conversation_id
            ORDER BY m.conversation_id LIMIT 1),
           found.n + 1
    FROM found
    WHERE found.conversation_id IS NOT NULL AND found.n < $3
)
SELECT found.conversation_id, figures.messages, figures.archived, figures.first_at, figures.last_at
FROM found
CROSS JOIN LATERAL (
    SELECT count(*) AS messages, count(m.archived_at) AS archived,
           min(m.created_at) AS first_at, max(m.created_at) AS last_at
    FROM messages m
    WHERE m.tenant_id = $1 AND m.conversation_id = found.conversation_id
) AS figures
WHERE found.conversation_id IS NOT NULL
ORDER BY found.conversation_id
"""

# Every id starts with a letter or digit (domain/message.py), so each sorts after the empty
# string, in any collation: "after nothing" is "after ''", and one statement serves both.
BEFORE_EVERY_ID = ""


class PgTenantDirectory(TenantDirectory):
    def __init__(self, database: Database) -> None:
        self._database = database

    @storage_errors
    async def tenants(self, after: str | None, limit: int) -> list[str]:
        rows = await self._database.executor().fetch(TENANTS, after or BEFORE_EVERY_ID, limit)
        return [r["tenant_id"] for r in rows]

    @storage_errors
    async def conversations(self, tenant_id: str, after: str | None, limit: int) -> list[ConversationSummary]:
        rows = await self._database.executor().fetch(CONVERSATIONS, tenant_id, after or BEFORE_EVERY_ID, limit)
        return [
            ConversationSummary(
                conversation_id=r["conversation_id"],
                messages=r["messages"],
                archived=r["archived"],
                first_at=aware(r["first_at"]),
                last_at=aware(r["last_at"]),
            )
            for r in rows
        ]
