"""Metadata matching is JSON's: numbers by value (100 is 100.0), true is not 1, as PostgreSQL's
jsonb compares. tests/integration/test_metadata_matching_pg.py holds the rule against
PostgreSQL itself."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.message import metadata_contains, same_json
from tests.json_strategies import NUMBERS, json_objects, json_values, metadata_and_filter, retyped


@pytest.mark.parametrize(
    ("stored", "wanted"),
    [(100.0, 100), (100, 100.0), (7, 7.0), (7.0, 7), (1e23, 10**23), ([1, 2.0], [2]), ({"x": -0.0}, {"x": 0})],
)
def test_numbers_match_by_value(stored: Any, wanted: Any) -> None:
    assert metadata_contains({"amount": stored}, {"amount": wanted})
    assert same_json(stored, retyped(stored))


@given(st.booleans(), NUMBERS)
def test_a_bool_is_never_a_number(flag: bool, number: Any) -> None:
    assert not metadata_contains({"k": flag}, {"k": number})
    assert not metadata_contains({"k": number}, {"k": flag})
    assert not same_json(flag, number) and not same_json([flag], [number])


@given(json_objects)
def test_metadata_contains_itself_whichever_way_its_numbers_are_written(metadata: dict[str, Any]) -> None:
    assert metadata_contains(metadata, metadata)
    assert metadata_contains(metadata, retyped(metadata))
    assert metadata_contains(retyped(metadata), metadata)
    assert same_json(metadata, retyped(metadata))


@given(json_values, json_values)
def test_same_json_is_symmetric_and_implies_containment_both_ways(a: Any, b: Any) -> None:
    assert same_json(a, b) == same_json(b, a)
    if same_json(a, b):
        assert metadata_contains({"k": a}, {"k": b}) and metadata_contains({"k": b}, {"k": a})


@given(metadata_and_filter())
def test_a_filter_with_a_key_metadata_lacks_never_matches(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    metadata, wanted = pair
    if set(wanted) - set(metadata):
        assert not metadata_contains(metadata, wanted)
    assert metadata_contains(metadata, {}) and metadata_contains(metadata, None)
