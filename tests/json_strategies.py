"""Generated JSON for property tests of metadata matching: values that collide often.

Few keys and small numbers, so a filter drawn independently still hits stored metadata now
and then; numbers as ints and as floats of the same value, bools beside 0 and 1, and the
floats whose shortest text is not their binary value (1e23), where a rule that compares
Python floats would part from PostgreSQL's, which reads the text.
"""

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

KEYS = ("a", "b", "amount")

NUMBERS = st.one_of(
    st.integers(-3, 3),
    st.integers(-3, 3).map(float),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([100, 100.0, 7, 7.0, 0.1, -0.0, 1e16, 10**16, 1e23, 10**23, 2**53 + 1, float(2**53)]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(alphabet="a1", max_size=2))

json_values = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=3)


def retyped(value: Any) -> Any:
    """The same JSON with every number written the other way where that keeps its value
    exactly (7 <-> 7.0); bools stay bools."""
    if isinstance(value, dict):
        return {k: retyped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [retyped(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) <= 2**53:
        return float(value)
    if isinstance(value, float) and value.is_integer():
        return int(Decimal(repr(value)))  # the value its JSON text says: 1e23 is 10**23
    return value


@st.composite
def part_of(draw: st.DrawFn, value: Any) -> Any:
    """A value drawn from `value`: some keys and elements kept, numbers maybe retyped, a
    scalar now and then replaced, so it is contained in `value` often but not always."""
    if isinstance(value, dict):
        keys = draw(st.lists(st.sampled_from(sorted(value)), unique=True)) if value else []
        return {k: draw(part_of(value[k])) for k in keys}
    if isinstance(value, list):
        picked = draw(st.lists(st.sampled_from(value), max_size=3)) if value else []
        return [draw(part_of(v)) for v in picked]
    return draw(st.one_of(st.just(value), st.just(retyped(value)), SCALARS))


@st.composite
def metadata_and_filter(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stored metadata and a search's metadata filter: drawn from it, or independently."""
    metadata = draw(json_objects)
    wanted = draw(st.one_of(part_of(metadata), json_objects))
    return metadata, wanted
