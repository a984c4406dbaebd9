"""The instants the service accepts: exactly the documented range, written in any offset, and
nothing done with an accepted one (other offsets, ages, retention cutoffs, Unix time) leaves
the calendar. Generated over Python's whole range, with the ends of it and of the range as
explicit examples."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, reject
from hypothesis import strategies as st

from domain.errors import ValidationFailed
from domain.instant import EARLIEST, LATEST, instant_problem, time_window
from domain.message import NewMessage
from domain.ranking import recency
from domain.retention import RetentionPolicy

# What README.md documents (the POST /v1/messages row): both ends included.
DOCUMENTED = (datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=UTC))
MICROSECOND = timedelta(microseconds=1)
DAY = timedelta(days=1)
MIN_UTC = datetime.min.replace(tzinfo=UTC)
MAX_UTC = datetime.max.replace(tzinfo=UTC)
PLUS_14 = timezone(timedelta(hours=14))
MINUS_12 = timezone(-timedelta(hours=12))
# Every offset Python allows: strictly inside a day either way, to the microsecond.
OFFSETS = [UTC, PLUS_14, MINUS_12, timezone(DAY - MICROSECOND), timezone(-DAY + MICROSECOND)]
offsets = st.one_of(st.sampled_from(OFFSETS), st.timedeltas(-DAY + MICROSECOND, DAY - MICROSECOND).map(timezone))


@st.composite
def near_an_end(draw: st.DrawFn) -> datetime:
    """Within two days of an end of the range, written in any offset."""
    end = draw(st.sampled_from(DOCUMENTED))
    try:
        return (end + draw(st.timedeltas(-2 * DAY, 2 * DAY))).astimezone(draw(offsets))
    except OverflowError:  # not a time Python can hold in that offset
        reject()


# Any wall-clock time Python holds, in any offset (so also times whose UTC is before year 1 or
# after 9999), and times close to the ends.
instants = st.one_of(
    st.datetimes(datetime.min, datetime.max, timezones=offsets),
    st.datetimes(datetime.min, datetime.min + 3 * DAY, timezones=offsets),
    st.datetimes(datetime.max - 3 * DAY, datetime.max, timezones=offsets),
    near_an_end(),
)
EDGES = [
    MIN_UTC,
    MAX_UTC,
    DOCUMENTED[0],
    DOCUMENTED[1],
    DOCUMENTED[0] - MICROSECOND,
    DOCUMENTED[1] + MICROSECOND,
    DOCUMENTED[0].astimezone(PLUS_14),
    DOCUMENTED[1].astimezone(MINUS_12),
    (DOCUMENTED[0] - MICROSECOND).astimezone(PLUS_14),
    (DOCUMENTED[1] + MICROSECOND).astimezone(MINUS_12),
    datetime.min.replace(tzinfo=PLUS_14),
    datetime.min.replace(tzinfo=MINUS_12),
    datetime.max.replace(tzinfo=PLUS_14),
    datetime.max.replace(tzinfo=MINUS_12),
]


def with_edges(test):  # type: ignore[no-untyped-def]
    for edge in EDGES:
        test = example(edge)(test)
    return test


def utc_microseconds(moment: datetime) -> int:
    """The instant as microseconds since Python's first one, computed without ever building a
    datetime outside Python's range (so it holds for every offset)."""
    offset = moment.utcoffset()
    assert offset is not None
    return (moment.replace(tzinfo=None) - datetime.min - offset) // MICROSECOND


def documented(moment: datetime) -> bool:
    return utc_microseconds(DOCUMENTED[0]) <= utc_microseconds(moment) <= utc_microseconds(DOCUMENTED[1])


def test_the_rule_holds_the_documented_range() -> None:
    assert (EARLIEST, LATEST) == DOCUMENTED


@given(instants)
@with_edges
def test_exactly_the_documented_range_is_accepted(moment: datetime) -> None:
    problem = instant_problem("created_at", moment)
    assert (problem is None) == documented(moment), moment
    if problem is not None:
        assert problem.field == "created_at" and "0001-01-02T00:00:00Z" in problem.message


def test_a_time_without_an_offset_is_refused() -> None:
    problem = instant_problem("created_at", datetime(2026, 1, 1))
    assert problem is not None and problem.field == "created_at" and "offset" in problem.message


@given(instants)
@with_edges
def test_an_accepted_time_is_stored_in_utc_and_survives_what_is_done_with_it(moment: datetime) -> None:
    if not documented(moment):
        with pytest.raises(ValidationFailed) as refused:
            NewMessage.parse(tenant_id="t", conversation_id="c", role="user", content="x", created_at=moment)
        assert [p.field for p in refused.value.problems] == ["created_at"]
        return
    new = NewMessage.parse(tenant_id="t", conversation_id="c", role="user", content="x", created_at=moment)
    assert new.created_at == moment and new.created_at is not None and new.created_at.utcoffset() == timedelta(0)
    for offset in OFFSETS:  # shown in any offset, still inside years 1-9999
        assert moment.astimezone(offset) == moment
    assert abs(datetime.fromtimestamp(moment.timestamp(), UTC) - moment) <= timedelta(milliseconds=1)  # Qdrant's
    for now in DOCUMENTED:
        assert 0.0 <= recency(moment, now, timedelta(days=30)) <= 1.0
        policy = RetentionPolicy(archive_after_days=365_000, delete_after_days=365_000)
        cutoff = policy.cutoff(policy.delete_after_days, now)
        assert cutoff is not None and DOCUMENTED[0] <= cutoff <= now


@given(st.one_of(st.none(), instants), st.one_of(st.none(), instants))
@example(MIN_UTC, MAX_UTC)
@example(DOCUMENTED[1], DOCUMENTED[0])
@example(DOCUMENTED[1] + MICROSECOND, None)
@example(None, DOCUMENTED[0] - MICROSECOND)
def test_a_search_window_reads_times_past_the_ends_as_the_ends_or_names_what_can_match_nothing(
    since: datetime | None, until: datetime | None
) -> None:
    """A since before the range means from its start, an until after it to its end; a since
    after the range, an until before it, or a since after the until match nothing: refused."""
    low, high = utc_microseconds(DOCUMENTED[0]), utc_microseconds(DOCUMENTED[1])
    wrong = []
    if since is not None and utc_microseconds(since) > high:
        wrong.append("since")
    if until is not None and utc_microseconds(until) < low:
        wrong.append("until")
    if not wrong and since is not None and until is not None and utc_microseconds(since) > utc_microseconds(until):
        wrong.append("since")
    if wrong:
        with pytest.raises(ValidationFailed) as refused:
            time_window(since, until)
        assert [p.field for p in refused.value.problems] == wrong
        return
    start, end = time_window(since, until)
    for given_, got, bound in ((since, start, DOCUMENTED[0]), (until, end, DOCUMENTED[1])):
        if given_ is None:
            assert got is None
            continue
        assert got is not None and got.utcoffset() == timedelta(0) and documented(got)
        clamped = min(max(utc_microseconds(given_), low), high)
        assert utc_microseconds(got) == clamped
        if documented(given_):
            assert got == given_
        else:
            assert got == bound


days = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**400), 10**400),
    st.floats(min_value=0, max_value=400_000),
    st.sampled_from([0, 1e-300, 365_000, 365_000.0000001, 365_001, 2**63, float("inf"), float("nan"), True]),
)


@given(days, st.sampled_from(["archive_after_days", "delete_after_days"]))
def test_retention_days_are_bounded_so_no_cutoff_overflows(value: object, field: str) -> None:
    fits = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and value == value  # not NaN
        and 0 < value <= 365_000
    )
    if not fits:
        with pytest.raises(ValidationFailed) as refused:
            RetentionPolicy(**{"archive_after_days": None, field: value})  # type: ignore[arg-type]
        assert [p.field for p in refused.value.problems] == [field]
        return
    policy = RetentionPolicy(**{"archive_after_days": None, field: value})  # type: ignore[arg-type]
    for now in (*DOCUMENTED, datetime(2026, 6, 1, tzinfo=UTC)):
        cutoff = policy.cutoff(getattr(policy, field), now)
        assert cutoff is not None and DOCUMENTED[0] <= cutoff <= now
