"""Times as read from PostgreSQL: always aware, in UTC.

asyncpg reads PostgreSQL's -infinity and infinity as naive datetime.min and datetime.max,
which no aware time can be compared with or subtracted from (ranking, retention and cursors
all do). The service no longer writes them (domain/instant.py keeps every accepted time a day
inside both ends), but a row stored before that rule, or by hand, may hold one. It reads as
the same instant made aware: Python's first or last, in UTC. asyncpg writes those two back as
-infinity and infinity, so the row keeps its place in every order and a page that ends on it
carries on after it, before any time just inside it that was accepted then.
"""

from __future__ import annotations

from datetime import UTC, datetime


def aware(moment: datetime) -> datetime:
    """A timestamptz as read: asyncpg hands over naive times only for the infinities."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def aware_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)
