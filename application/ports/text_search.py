"""Full-text search over the stored messages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


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
