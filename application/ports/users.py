"""The messages of one person (a user_id) inside a tenant: read in time order, found for erasure."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from application.ports.messages import Position
from domain.message import Message


class UserMessages(Protocol):
    """A user's messages, always inside one tenant: the same user id in another tenant is another person."""

    async def page(
        self, tenant_id: str, user_id: str, after: Position | None, limit: int, include_archived: bool
    ) -> list[Message]:
        """Up to `limit` of the user's messages after `after`, oldest first (ties by id), across conversations."""
        ...

    async def message_ids(self, tenant_id: str, user_id: str, limit: int) -> Sequence[uuid.UUID]:
        """Up to `limit` ids of the user's messages, any order."""
        ...
