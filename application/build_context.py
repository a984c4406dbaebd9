"""What to put in front of a model for its next turn: the conversation's latest turns and the
memories that matter, within a token budget (the rules: domain/context.py)."""

from __future__ import annotations

import asyncio
import enum
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from application.ports.messages import MessageRepository
from application.ports.tokenizer import Tokenizer
from application.search_memory import MAX_TOP_K, SearchMemory, SearchQuery
from domain.access import Principal
from domain.context import Context, ContextBudget, build_context
from domain.errors import FieldProblem, ValidationFailed
from domain.message import Message, Role, id_problem
from domain.ranking import RankedMessage

DEFAULT_QUERY_CHARS = 1_000  # of the latest user message, when it stands in for the query


class ContextScope(enum.StrEnum):
    CONVERSATION = "conversation"  # memories from earlier in this conversation
    USER = "user"  # memories from any conversation of this user (the default when the call names one)
    TENANT = "tenant"  # memories from any conversation of the tenant


@dataclass(frozen=True, slots=True)
class ContextSettings:
    max_tokens: int = 32_000  # the largest budget a call may ask for
    recent_share: float = 0.2  # of the budget, for the recent turns; what they leave goes to memories
    default_recent: int = 20  # turns considered for the recent window when the call names none
    max_recent: int = 200
    memories: int = 20  # memories asked of the search, beyond the window's own turns

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("the context budget's bound is at least one token")
        if math.isnan(self.recent_share) or not 0 <= self.recent_share <= 1:
            raise ValueError("the recent turns' share is between 0 and 1")
        if not 1 <= self.default_recent <= self.max_recent:
            raise ValueError("the default recent window is between 1 and its bound")
        if not 1 <= self.memories <= MAX_TOP_K:
            raise ValueError(f"the memories asked of search are between 1 and {MAX_TOP_K}")


@dataclass(frozen=True, slots=True)
class ContextRequest:
    tenant_id: str
    conversation_id: str
    max_tokens: int
    query: str | None = None  # None: the conversation's latest user message
    recent: int | None = None  # None: the default
    scope: str | None = None  # None: user when user_id is given, else conversation
    user_id: str | None = None  # whose memories the user scope draws on
    mode: str | None = None
    role: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_importance: float | None = None
    metadata: dict[str, Any] | None = None


class BuildContext:
    def __init__(
        self, messages: MessageRepository, search: SearchMemory, tokenizer: Tokenizer, settings: ContextSettings
    ) -> None:
        self._messages = messages
        self._search = search
        self._tokenizer = tokenizer
        self._settings = settings

    async def __call__(self, principal: Principal, request: ContextRequest) -> Context:
        recent, scope = self._validate(request)
        principal.require_tenant(request.tenant_id)
        window_read = self._messages.latest_turns(request.tenant_id, request.conversation_id, recent)
        if request.query is not None:  # both at once: the query does not wait for the window
            window, found = await asyncio.gather(window_read, self._find(principal, request, scope, request.query))
        else:
            window = await window_read
            query = latest_user_message(window)
            found = await self._find(principal, request, scope, query) if query else []
        budget = ContextBudget(request.max_tokens, self._settings.recent_share)
        return build_context(window, found, budget, self._tokenizer, here=request.conversation_id)

    async def _find(
        self, principal: Principal, request: ContextRequest, scope: ContextScope, query: str
    ) -> list[RankedMessage]:
        within = request.conversation_id if scope == ContextScope.CONVERSATION else None
        person = request.user_id if scope == ContextScope.USER else None
        # The window's own turns are found too (and dropped): ask for as many more.
        top_k = min(MAX_TOP_K, self._settings.memories + (request.recent or self._settings.default_recent))
        search = SearchQuery(
            tenant_id=request.tenant_id,
            query=query,
            top_k=top_k,
            conversation_id=within,
            role=request.role,
            since=request.since,
            until=request.until,
            min_importance=request.min_importance,
            mode=request.mode,
            metadata=request.metadata,
            user_id=person,
        )
        return await self._search(principal, search)

    def _validate(self, request: ContextRequest) -> tuple[int, ContextScope]:
        problems = [
            p
            for p in (
                id_problem("tenant_id", request.tenant_id),
                id_problem("conversation_id", request.conversation_id),
                None if request.user_id is None else id_problem("user_id", request.user_id),
            )
            if p is not None
        ]
        bound = self._settings.max_tokens
        if not 1 <= request.max_tokens <= bound:
            problems.append(FieldProblem("max_tokens", f"must be between 1 and {bound}"))
        recent = self._settings.default_recent if request.recent is None else request.recent
        if not 1 <= recent <= self._settings.max_recent:
            problems.append(FieldProblem("recent", f"must be between 1 and {self._settings.max_recent}"))
        scope = ContextScope.USER if request.user_id is not None else ContextScope.CONVERSATION
        try:
            scope = scope if request.scope is None else ContextScope(request.scope)
        except ValueError:
            problems.append(FieldProblem("scope", f"must be one of {', '.join(s.value for s in ContextScope)}"))
        if scope == ContextScope.USER and request.user_id is None:
            problems.append(FieldProblem("user_id", "is required with scope user: whose memories to draw on"))
        if problems:
            raise ValidationFailed(problems)
        return recent, scope


def latest_user_message(window: list[Message]) -> str | None:
    """What the conversation's latest user message says (its beginning), if it says anything."""
    for message in reversed(window):
        if message.role == Role.USER and message.content.strip():
            return message.content[:DEFAULT_QUERY_CHARS]
    return None
