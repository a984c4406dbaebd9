"""One person's messages inside a tenant (their user_id): list them, erase them, export them.

Erasure goes in bounded batches, as a conversation's does (application/delete_messages.py):
each batch locks the rows it found, keeps those still of the user, forgets their vectors and
deletes them in one transaction, until a read finds none left. So a write for the user that
commits while an erasure runs is erased whole, if it commits before that last read, or
survives whole, if it commits after: a write commits its messages at once, and the erasure
goes on until it sees none. A PATCH that moves a message to another user before its batch
locks it keeps it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from application.list_conversation import MAX_PAGE, ConversationPage
from application.ports.messages import MessageRepository, Position
from application.ports.storage import Transactions
from application.ports.users import UserMessages
from application.ports.vectors import VectorIndex
from domain.access import Principal
from domain.errors import FieldProblem, ValidationFailed
from domain.message import Message, check_id, fitting

EXPORT_PAGE = 200  # messages read per query while an export streams


def check_user(principal: Principal, tenant_id: str, user_id: str) -> None:
    check_id("tenant_id", tenant_id)
    check_id("user_id", user_id)
    principal.require_tenant(tenant_id)


@dataclass(frozen=True, slots=True)
class UserErasure:
    """What erasing a user deleted."""

    tenant_id: str
    user_id: str
    messages: int
    vectors: int
    conversations: int  # conversations that held at least one of the messages deleted


class ListUserMessages:
    def __init__(self, users: UserMessages, max_response_bytes: int = 1_048_576) -> None:
        self._users = users
        self._max_response_bytes = max_response_bytes

    async def __call__(
        self,
        principal: Principal,
        tenant_id: str,
        user_id: str,
        *,
        after: Position | None = None,
        limit: int = 50,
        include_archived: bool = False,
    ) -> ConversationPage:
        """The user's messages across conversations, oldest first, a page at a time (as a conversation's)."""
        check_user(principal, tenant_id, user_id)
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed([FieldProblem("limit", f"must be between 1 and {MAX_PAGE}")])
        found = await self._users.page(tenant_id, user_id, after, limit + 1, include_archived)
        kept = min(limit, fitting(found, self._max_response_bytes))
        page = found[:kept]
        more = len(found) > kept
        return ConversationPage(page, Position(page[-1].created_at, page[-1].id) if more else None)


class EraseUser:
    def __init__(
        self,
        messages: MessageRepository,
        users: UserMessages,
        index: VectorIndex,
        transactions: Transactions,
        batch_size: int,
    ) -> None:
        self._messages = messages
        self._users = users
        self._index = index
        self._transactions = transactions
        self._batch_size = batch_size

    async def __call__(self, principal: Principal, tenant_id: str, user_id: str) -> UserErasure:
        """Erase every message of the user in the tenant, vectors included; a second call erases nothing."""
        check_user(principal, tenant_id, user_id)
        messages = vectors = 0
        conversations: set[str] = set()
        while ids := await self._users.message_ids(tenant_id, user_id, self._batch_size):
            async with self._transactions.begin():
                locked = [m for m in await self._messages.lock(tenant_id, ids) if m.user_id == user_id]
                gone = [m.id for m in locked]
                vectors += await self._index.delete(tenant_id, gone)
                deleted = set(await self._messages.delete(tenant_id, gone))
            messages += len(deleted)
            conversations.update(m.conversation_id for m in locked if m.id in deleted)
        return UserErasure(tenant_id, user_id, messages, vectors, len(conversations))


class ExportUser:
    def __init__(self, users: UserMessages, page_size: int = EXPORT_PAGE) -> None:
        self._users = users
        self._page_size = page_size

    async def __call__(self, principal: Principal, tenant_id: str, user_id: str) -> AsyncIterator[Message]:
        """Every stored message of the user, archived ones included, oldest first. The checks are
        made here, before the first message is read: a refusal comes before any of the export."""
        check_user(principal, tenant_id, user_id)
        return self._messages(tenant_id, user_id)

    async def _messages(self, tenant_id: str, user_id: str) -> AsyncIterator[Message]:
        after: Position | None = None
        while page := await self._users.page(tenant_id, user_id, after, self._page_size, True):
            for message in page:
                yield message
            after = Position(page[-1].created_at, page[-1].id)
