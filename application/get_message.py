"""Read one message by id, inside a tenant the caller may access."""

from __future__ import annotations

import uuid

from application.errors import NotFound
from application.ports.messages import MessageRepository
from domain.access import Principal
from domain.message import Message, check_id


class GetMessage:
    def __init__(self, messages: MessageRepository) -> None:
        self._messages = messages

    async def __call__(self, principal: Principal, tenant_id: str, message_id: uuid.UUID) -> Message:
        check_id("tenant_id", tenant_id)
        principal.require_tenant(tenant_id)
        message = await self._messages.get(tenant_id, message_id)
        if message is None:
            raise NotFound(f"no message {message_id} in tenant '{tenant_id}'")
        return message
