"""What narrows a search, whichever index answers it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.message import Message, Role, metadata_contains

if TYPE_CHECKING:
    from application.ports.vectors import VectorRecord


@dataclass(frozen=True, slots=True)
class SearchFilters:
    conversation_id: str | None = None
    role: Role | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_importance: float | None = None
    metadata: dict[str, Any] | None = None  # messages whose metadata contains this object (JSON containment)
    user_id: str | None = None  # messages of this user (inside the tenant searched)

    def admits(self, message: Message) -> bool:
        """What every search applies: the filters, checked on one message."""
        return self.admits_record(message) and metadata_contains(message.metadata, self.metadata)

    def admits_record(self, record: VectorRecord | Message) -> bool:
        """The filters a vector index applies (a vector record carries no metadata)."""
        return (
            (self.conversation_id is None or record.conversation_id == self.conversation_id)
            and (self.role is None or record.role == self.role)
            and (self.since is None or record.created_at >= self.since)
            and (self.until is None or record.created_at <= self.until)
            and (self.min_importance is None or record.importance >= self.min_importance)
            and (self.user_id is None or record.user_id == self.user_id)
        )
