"""Full-text search over the stored messages, and the neighbours of a message in its conversation."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from application.ports.filters import SearchFilters
from domain.message import Message


@dataclass(frozen=True, slots=True)
class KeywordHit:
    message_id: uuid.UUID
    rank: float  # full-text relevance, higher is better (comparable within one search only)


@dataclass(frozen=True, slots=True)
class KeywordLimits:
    """What bounds the cost of one keyword search, whatever a tenant has stored or asks."""

    max_terms: int = 32  # distinct words of the query used, in the order they come
    max_ranked: int = 2_000  # matching messages ranked (the newest, when more match)

    def __post_init__(self) -> None:
        if self.max_terms < 1 or self.max_ranked < 1:
            raise ValueError("keyword search limits must be positive")


class TextSearch(Protocol):
    """Full-text search over a tenant's messages, and the neighbours search lends a score to."""

    async def keyword_search(self, tenant_id: str, query: str, k: int, filters: SearchFilters) -> list[KeywordHit]:
        """At most k of the tenant's unarchived messages that share a word (stemmed) with the query,
        most relevant first. Any word may match (not all of them): ranking sorts out the rest.
        An adapter may leave out messages that share only words found in a large share of
        all messages, unless they share all of the query's such words. Words of the
        message's date (UTC, as "8 May 2023") match as well as its content's."""
        ...

    async def adjacent(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Message]]:
        """For each of the tenant's messages among message_ids, the unarchived messages just
        before and just after it in its conversation, in the order a conversation is listed
        (created_at, then id); none at a conversation's ends. Whole messages: a search needs
        their rows, and asking for them apart was a round trip of its own."""
        ...
