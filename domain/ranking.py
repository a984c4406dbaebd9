"""How search results are ordered: similarity to the query, importance and age.

final = w_sim * similarity + w_imp * importance + w_rec * recency
recency = 0.5 ** (age / half_life), so a message exactly one half-life old scores 0.5.
"""

from __future__ import annotations

import heapq
import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.message import Message


@dataclass(frozen=True, slots=True)
class RankingWeights:
    similarity: float = 0.7
    importance: float = 0.2
    recency: float = 0.1
    half_life: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        weights = (self.similarity, self.importance, self.recency)
        if any(math.isnan(w) or w < 0 for w in weights):
            raise ValueError("ranking weights must be non-negative numbers")
        if sum(weights) == 0:
            raise ValueError("at least one ranking weight must be positive")
        if self.half_life <= timedelta(0):
            raise ValueError("the recency half-life must be positive")


@dataclass(frozen=True, slots=True)
class ScoreParts:
    similarity: float
    importance: float
    recency: float
    final: float


@dataclass(frozen=True, slots=True)
class RankedMessage:
    message: Message
    scores: ScoreParts
    # How the relevance (scores.similarity) was found: e.g. semantic similarity and rank,
    # keyword score and rank, and their fusion.
    relevance: Mapping[str, float] = field(default_factory=dict)


def recency(created_at: datetime, now: datetime, half_life: timedelta) -> float:
    """1.0 for a message written now (or in the future), halving every half-life."""
    age = max(timedelta(0), now - created_at)
    return float(0.5 ** (age / half_life))


def score(
    similarity: float, importance: float, created_at: datetime, now: datetime, weights: RankingWeights
) -> ScoreParts:
    rec = recency(created_at, now, weights.half_life)
    final = weights.similarity * similarity + weights.importance * importance + weights.recency * rec
    return ScoreParts(similarity=similarity, importance=importance, recency=rec, final=final)


def rank(
    candidates: Iterable[tuple[Message, float]],
    now: datetime,
    weights: RankingWeights,
    top_k: int,
    relevance: Mapping[Any, Mapping[str, float]] | None = None,
) -> list[RankedMessage]:
    """Order (message, similarity) candidates best first and keep top_k.

    Ties on the final score go to the more similar, then the newer message, then the id,
    so the order is total and repeatable. Only the kept ones are made into RankedMessage:
    a hybrid search ranks about 200 candidates to keep 10.
    """
    keyed = []
    for message, similarity in candidates:
        rec = recency(message.created_at, now, weights.half_life)
        final = weights.similarity * similarity + weights.importance * message.importance + weights.recency * rec
        keyed.append((-final, -similarity, -message.created_at.timestamp(), message.id.int, rec, message))
    parts = relevance or {}
    return [
        RankedMessage(
            message,
            ScoreParts(
                similarity=-negative_similarity, importance=message.importance, recency=rec, final=-negative_final
            ),
            parts.get(message.id, {}),
        )
        for negative_final, negative_similarity, _, _, rec, message in heapq.nsmallest(top_k, keyed, key=ORDER)
    ]


ORDER = operator.itemgetter(0, 1, 2, 3)  # best final, then similarity, newer, id (as its str would order)
