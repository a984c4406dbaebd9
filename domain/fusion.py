"""Reciprocal rank fusion: one ranking out of several, by rank alone (scores of different
kinds, such as cosine similarity and full-text rank, are not comparable).

fused(d) = sum over rankings r holding d of 1 / (K + rank_r(d)), ranks from 1; divided by
the best possible (first in every ranking) so that it lies in [0, 1].
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = 60  # the constant of Cormack, Clarke and Buettcher (2009)

T = TypeVar("T", bound=Hashable)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[T]], k: int = K) -> dict[T, float]:
    if not rankings:
        return {}
    fused: dict[T, float] = {}
    for ranking in rankings:
        for position, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + position)
    best = len(rankings) / (k + 1)
    return {item: value / best for item, value in fused.items()}
