"""What a retention policy does with a message: keep it, archive it, or delete it.

A message is archived (kept, no longer searched) once it is older than
archive_after_days and its importance is below the threshold, and deleted (gone) once
it is older than delete_after_days and below the threshold. Pinned messages (pinned, or
an explicit importance of 1.0) and messages of a protected role are always kept. Age
counts from when the message was said, or from its last restore when that is later, so
a restored message is not archived again by the next run.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from domain.errors import FieldProblem, ValidationFailed
from domain.instant import earlier
from domain.message import Message, Role


class RetentionAction(enum.StrEnum):
    KEEP = "keep"
    ARCHIVE = "archive"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class RetentionDecision:
    action: RetentionAction
    reason: str


@dataclass(frozen=True, slots=True)
class RetentionFacts:
    """What the rule reads of a message (the repository hands over these, not whole messages)."""

    message_id: uuid.UUID
    role: Role
    created_at: datetime
    importance: float
    pinned: bool
    archived_at: datetime | None = None
    restored_at: datetime | None = None

    @classmethod
    def of(cls, message: Message) -> RetentionFacts:
        return cls(
            message_id=message.id,
            role=message.role,
            created_at=message.created_at,
            importance=message.importance,
            pinned=message.is_pinned,
            archived_at=message.archived_at,
            restored_at=message.restored_at,
        )

    def age(self, now: datetime) -> timedelta:
        start = max(self.created_at, self.restored_at) if self.restored_at else self.created_at
        return now - start


MAX_DAYS = 365_000  # about 999 years: a cutoff this far back is still a time (see cutoff)


def _days_problem(name: str, value: object) -> FieldProblem | None:
    if value is None:
        return None
    # Comparisons only: NaN fails both, and an int too large for a float never becomes one.
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return FieldProblem(name, "must be a positive number of days, or null for never")
    if not value <= MAX_DAYS:
        return FieldProblem(name, f"must be at most {MAX_DAYS} days")
    return None


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """None for archive_after_days or delete_after_days means never."""

    archive_after_days: float | None = 30.0
    delete_after_days: float | None = None
    importance_threshold: float = 0.35
    protected_roles: frozenset[Role] = frozenset()

    def __post_init__(self) -> None:
        problems = [
            p
            for p in (
                _days_problem("archive_after_days", self.archive_after_days),
                _days_problem("delete_after_days", self.delete_after_days),
            )
            if p is not None
        ]
        threshold = self.importance_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
            problems.append(FieldProblem("importance_threshold", "must be a number between 0 and 1"))
        archive, delete = self.archive_after_days, self.delete_after_days
        if not problems and archive is not None and delete is not None and delete < archive:
            problems.append(
                FieldProblem("delete_after_days", "must not be less than archive_after_days (archive, then delete)")
            )
        if problems:
            raise ValidationFailed(problems)

    def overridden(self, changes: Mapping[str, Any]) -> RetentionPolicy:
        """This policy with a tenant's overrides (any of its fields; roles as names) applied."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValidationFailed([FieldProblem(name, "is not a retention policy field") for name in unknown])
        values = dict(changes)
        if "protected_roles" in values:
            values["protected_roles"] = parse_roles(values["protected_roles"])
        return replace(self, **values)

    def describe(self) -> dict[str, Any]:
        return {
            "archive_after_days": self.archive_after_days,
            "delete_after_days": self.delete_after_days,
            "importance_threshold": self.importance_threshold,
            "protected_roles": sorted(r.value for r in self.protected_roles),
        }

    def cutoff(self, days: float | None, now: datetime) -> datetime | None:
        """Messages whose age started before this are past `days` (None: never). Days are
        bounded (MAX_DAYS), and a cutoff before the first accepted time is that time."""
        return None if days is None else earlier(now, timedelta(days=days))


def parse_roles(value: object) -> frozenset[Role]:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple | set | frozenset):
        raise ValidationFailed([FieldProblem("protected_roles", "must be a list of roles")])
    try:
        return frozenset(Role(str(name).strip()) for name in names if str(name).strip())
    except ValueError:
        raise ValidationFailed(
            [FieldProblem("protected_roles", f"must name roles among {', '.join(r.value for r in Role)}")]
        ) from None


def decide(policy: RetentionPolicy, message: RetentionFacts, now: datetime) -> RetentionDecision:
    if message.pinned:
        return RetentionDecision(RetentionAction.KEEP, "pinned")
    if message.role in policy.protected_roles:
        return RetentionDecision(RetentionAction.KEEP, f"role {message.role.value} is protected")
    if message.importance >= policy.importance_threshold:
        return RetentionDecision(RetentionAction.KEEP, "important enough")
    age = message.age(now)
    if policy.delete_after_days is not None and age > timedelta(days=policy.delete_after_days):
        return RetentionDecision(RetentionAction.DELETE, f"older than {policy.delete_after_days:g} days")
    if policy.archive_after_days is not None and age > timedelta(days=policy.archive_after_days):
        if message.archived_at is not None:
            return RetentionDecision(RetentionAction.KEEP, "already archived")
        return RetentionDecision(RetentionAction.ARCHIVE, f"older than {policy.archive_after_days:g} days")
    return RetentionDecision(RetentionAction.KEEP, "recent")
