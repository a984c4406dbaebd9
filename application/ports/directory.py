"""What a console lists: the tenants that hold messages, and a tenant's conversations with their figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One conversation as a listing shows it: its size and the span of its messages."""

    conversation_id: str
    messages: int  # every stored message, archived ones included
    archived: int
    first_at: datetime  # created_at of its oldest message
    last_at: datetime  # created_at of its newest message


class TenantDirectory(Protocol):
    """Read-only keyset walks over the tenants and conversations messages name, in id order.

    Each reads in proportion to the page it answers, not to the messages stored: the system of
    record holds millions of rows, a console asks for a page at a time."""

    async def tenants(self, after: str | None, limit: int) -> list[str]:
        """Up to `limit` tenants holding at least one message, in order, each after `after`."""
        ...

    async def conversations(self, tenant_id: str, after: str | None, limit: int) -> list[ConversationSummary]:
        """Up to `limit` of the tenant's conversations, in conversation_id order, each after `after`."""
        ...
