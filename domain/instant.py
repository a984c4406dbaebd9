"""The times the service accepts: aware, and a day inside the calendar Python and PostgreSQL share.

Python's datetime holds 0001-01-01 to 9999-12-31; asyncpg writes the first and last instants
of that, in UTC, as PostgreSQL's -infinity / infinity, and reads those back as naive times
that no aware time compares with. An accepted time lies from EARLIEST to LATEST (both
included): a day inside each end, so it can be written in any UTC offset (Python allows
less than a day either way; +14:00 and -12:00 are in use) and stays inside years 1-9999,
never becomes an infinity, and what is done with it (ages, retention cutoffs, cursors, Unix
seconds in Qdrant) never leaves the calendar. Accepted times are kept in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.errors import FieldProblem, ValidationFailed

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=UTC)
RANGE = "from 0001-01-02T00:00:00Z to 9999-12-30T23:59:59.999999Z"


def instant_problem(field_name: str, moment: datetime | None) -> FieldProblem | None:
    """A time must carry an offset and lie from EARLIEST to LATEST (compared as instants, so
    whatever its offset; no conversion that could leave the calendar happens on the way)."""
    if moment is None:
        return None
    if moment.utcoffset() is None:
        return FieldProblem(field_name, "must carry a time zone offset")
    if not EARLIEST <= moment <= LATEST:
        return FieldProblem(field_name, f"must be {RANGE}")
    return None


def in_utc(moment: datetime) -> datetime:
    """An accepted time (see instant_problem) in UTC."""
    return moment.astimezone(UTC)


def time_window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """The bounds of a search, in UTC. A since before EARLIEST means from the start and an until
    after LATEST to the end (Go's zero time, .NET's DateTime.MinValue / MaxValue): each is read
    as that end, since nothing is stored past it. A since after LATEST, an until before
    EARLIEST or a since after the until can match nothing, and are refused naming the field."""
    problems = []
    if since is not None and (problem := instant_problem("since", since)) is not None:
        if since.utcoffset() is not None and since < EARLIEST:
            since = EARLIEST
        else:
            problems.append(problem)
    if until is not None and (problem := instant_problem("until", until)) is not None:
        if until.utcoffset() is not None and until > LATEST:
            until = LATEST
        else:
            problems.append(problem)
    if not problems and since is not None and until is not None and since > until:
        problems.append(FieldProblem("since", "must not be after until"))
    if problems:
        raise ValidationFailed(problems)
    return (None if since is None else in_utc(since)), (None if until is None else in_utc(until))


def earlier(moment: datetime, by: timedelta) -> datetime:
    """`moment - by`, or EARLIEST when that is before it (no accepted time is older)."""
    return moment - by if moment - EARLIEST > by else EARLIEST
