"""One relevance out of several searches: weighted score fusion, then neighbours' help.

Cosine similarity and full-text rank are on different scales, so each list's scores are
first min-max normalised over that list's own hits (its best hit 1, its worst 0; a list
whose hits all score the same gives them all 1), then summed with weights that add to 1:

    fused(d) = sum over lists L of w_L * norm_L(d)        (0 where L did not find d)

Scores rather than ranks (reciprocal rank fusion): full-text rank is coarse, and many
messages sharing one word share one score. Fusing ranks would turn the arbitrary order
within such a tie into signal; fusing scores keeps a tie a tie. On LoCoMo, fusing scores
with the keyword side weighted 0.6 finds 7 points more of the evidence in the top 10
than reciprocal rank fusion (bench/results/quality.md).

A message next to a strong hit in its conversation often holds the rest of the answer
(the reply to a question, the second half of a thought). So the best hits lend part of
their fused score to the messages just before and after them:

    final(d) = (fused(d) + w_n * max over lenders l adjacent to d of fused(l)) / (1 + w_n)

which lies in [0, 1] again and adds the neighbours to the candidates.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T", bound=Hashable)


def min_max(scores: Mapping[T, float]) -> dict[T, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return dict.fromkeys(scores, 1.0)
    return {item: (value - low) / (high - low) for item, value in scores.items()}


def weighted_sum(lists: Sequence[tuple[float, Mapping[T, float]]]) -> dict[T, float]:
    """Sum over lists of weight * score, an item missing from a list counting 0 there."""
    total: dict[T, float] = {}
    for weight, scores in lists:
        for item, value in scores.items():
            total[item] = total.get(item, 0.0) + weight * value
    return total


def lenders(fused: Mapping[T, float], count: int) -> list[T]:
    """The `count` best fused candidates: the ones whose neighbours are worth a look."""
    return sorted(fused, key=lambda item: fused[item], reverse=True)[:count]


def lent(fused: Mapping[T, float], adjacent: Mapping[T, Iterable[T]]) -> dict[T, float]:
    """What each neighbour borrows: the best fused score of a lender next to it.
    `adjacent` maps each lender to the messages just before and after it."""
    borrowed: dict[T, float] = {}
    for lender, neighbours in adjacent.items():
        for neighbour in neighbours:
            borrowed[neighbour] = max(borrowed.get(neighbour, 0.0), fused.get(lender, 0.0))
    return borrowed


def with_neighbours(fused: Mapping[T, float], borrowed: Mapping[T, float], weight: float) -> dict[T, float]:
    return {
        item: (fused.get(item, 0.0) + weight * borrowed.get(item, 0.0)) / (1 + weight)
        for item in fused.keys() | borrowed.keys()
    }
