"""A conversation's messages in the order they were said (or the reverse), a page at a time."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports.messages import MessageRepository, Order, Position
from domain.access import Principal
from domain.errors import FieldProblem, ValidationFailed
from domain.message import Message, check_id, fitting

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class ConversationPage:
    messages: list[Message]
    next: Position | None  # where the next page starts; None on the last page


class ListConversation:
    def __init__(self, messages: MessageRepository, max_response_bytes: int = 1_048_576) -> None:
        self._messages = messages
        self._max_response_bytes = max_response_bytes

    async def __call__(
        self,
        principal: Principal,
        tenant_id: str,
        conversation_id: str,
        *,
        after: Position | None = None,
        limit: int = 50,
        include_archived: bool = False,
        order: Order = Order.OLDEST,
    ) -> ConversationPage:
        """A page of the conversation in `order`; `next` is where the following page starts, in
        that same order (a cursor carries no direction: the caller passes the order again)."""
        check_id("tenant_id", tenant_id)
        check_id("conversation_id", conversation_id)
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed([FieldProblem("limit", f"must be between 1 and {MAX_PAGE}")])
        principal.require_tenant(tenant_id)
        # One more than asked tells whether another page follows, without a count.
        found = await self._messages.conversation_page(
            tenant_id, conversation_id, after, limit + 1, include_archived, order
        )
        # A page stops short of the response budget, however large its messages: the next goes on.
        kept = min(limit, fitting(found, self._max_response_bytes))
        page = found[:kept]
        more = len(found) > kept
        return ConversationPage(page, Position(page[-1].created_at, page[-1].id) if more else None)
