"""The round-robin rule that shares a claim's batch among the tenants waiting."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.fair_claims import round_robin_shares


def one_at_a_time(ready: list[int], batch: int) -> list[int]:
    """The rule as it is said: each tenant in turn takes one, round after round."""
    shares = [0] * len(ready)
    while batch > 0 and any(s < n for s, n in zip(shares, ready, strict=True)):
        for i, n in enumerate(ready):
            if batch > 0 and shares[i] < n:
                shares[i] += 1
                batch -= 1
    return shares


@given(st.lists(st.integers(0, 300), max_size=40), st.integers(0, 300))
def test_shares_are_what_taking_one_each_in_turn_gives(ready, batch):
    assert round_robin_shares(ready, batch) == one_at_a_time(ready, batch)


@given(st.lists(st.integers(1, 300), min_size=1, max_size=40), st.integers(1, 300))
def test_a_count_capped_where_the_docstring_says_changes_nothing(ready, batch):
    cap = max(batch - len(ready) + 1, 1)
    assert round_robin_shares([min(n, cap) for n in ready], batch) == round_robin_shares(ready, batch)


@pytest.mark.parametrize(
    ("ready", "batch", "shares"),
    [
        ([200, 1], 32, [31, 1]),  # the small tenant is served in the first batch
        ([500, 500, 500], 30, [10, 10, 10]),
        ([3, 100, 100], 30, [3, 14, 13]),  # what one leaves, the others share; the first in turn gets the odd one
        ([5, 5, 5], 4, [2, 1, 1]),
        ([1] * 40, 32, [1] * 32 + [0] * 8),
    ],
)
def test_examples(ready, batch, shares):
    assert round_robin_shares(ready, batch) == shares


def test_negative_counts_are_refused():
    with pytest.raises(ValueError, match="negative"):
        round_robin_shares([1, -1], 3)
