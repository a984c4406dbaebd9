"""The fake of the TenantDirectory port: a view of the in-memory messages table."""

from __future__ import annotations

from application.ports.directory import ConversationSummary, TenantDirectory
from domain.message import Message
from tests.fakes.messages import InMemoryMessageTable


class InMemoryTenantDirectory(TenantDirectory):
    def __init__(self, table: InMemoryMessageTable) -> None:
        self.table = table

    async def tenants(self, after: str | None, limit: int) -> list[str]:
        found = sorted({m.tenant_id for m in self.table.rows.values()})
        return [t for t in found if after is None or t > after][:limit]

    async def conversations(self, tenant_id: str, after: str | None, limit: int) -> list[ConversationSummary]:
        by_conversation: dict[str, list[Message]] = {}
        for message in self.table.rows.values():
            if message.tenant_id == tenant_id and (after is None or message.conversation_id > after):
                by_conversation.setdefault(message.conversation_id, []).append(message)
        return [
            ConversationSummary(
                conversation_id=conversation_id,
                messages=len(messages),
                archived=sum(m.archived_at is not None for m in messages),
                first_at=min(m.created_at for m in messages),
                last_at=max(m.created_at for m in messages),
            )
            for conversation_id, messages in sorted(by_conversation.items())[:limit]
        ]
