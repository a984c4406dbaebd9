"""The fake of full-text search: a view of the in-memory messages table."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from application.ports.filters import SearchFilters
from application.ports.text_search import KeywordHit, TextSearch
from domain.message import Message
from tests.fakes.messages import InMemoryMessageTable

WORD = re.compile(r"\w+")


MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def date_words(at: datetime) -> str:
    """As memorymesh_date_words() in PostgreSQL (migration 0005): '8 May 2023', in UTC,
    in English whatever the locale."""
    day = at.astimezone(UTC)
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


STOP_WORDS = frozenset(
    {"a", "an", "and", "are", "did", "do", "i", "in", "is", "it", "my", "of", "on", "the", "to", "what"}
)


class InMemoryTextSearch(TextSearch):
    def __init__(self, table: InMemoryMessageTable) -> None:
        self.table = table

    async def keyword_search(self, tenant_id: str, query: str, k: int, filters: SearchFilters) -> list[KeywordHit]:
        """Shared lower-cased words of the content and its date, counted: a stand-in for
        PostgreSQL's full-text search."""
        wanted = set(WORD.findall(query.lower())) - STOP_WORDS
        hits = []
        for message in self.table.rows.values():
            if message.tenant_id != tenant_id or message.archived_at is not None:
                continue
            if not filters.admits(message):
                continue
            words = f"{message.content} {date_words(message.created_at)}".lower()
            shared = len(wanted & set(WORD.findall(words)))
            if shared:
                hits.append(KeywordHit(message.id, float(shared)))
        hits.sort(key=lambda h: (-h.rank, h.message_id))
        return hits[:k]

    async def adjacent(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Message]]:
        found: dict[uuid.UUID, list[Message]] = {}
        for message in self.table.of_tenant(tenant_id, message_ids):
            conversation = sorted(
                (
                    m
                    for m in self.table.rows.values()
                    if m.tenant_id == tenant_id
                    and m.conversation_id == message.conversation_id
                    and (m.archived_at is None or m.id == message.id)
                ),
                key=lambda m: (m.created_at, m.id),
            )
            at = conversation.index(message)
            found[message.id] = conversation[max(0, at - 1) : at] + conversation[at + 1 : at + 2]
        return found
