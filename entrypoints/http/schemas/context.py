"""The JSON shapes of the context call."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.context import Context, Entry
from entrypoints.http.schemas.common import AN_ID, JSON_BODY, JsonInstant, RoleName
from entrypoints.http.schemas.messages import MessageOut
from entrypoints.http.schemas.search import ScoresOut, SearchModeName

ScopeName = Literal["conversation", "user", "tenant"]


class ContextIn(BaseModel):
    model_config = JSON_BODY

    tenant_id: str = Field(json_schema_extra=AN_ID)
    conversation_id: str = Field(description="The conversation the next turn belongs to", json_schema_extra=AN_ID)
    max_tokens: int = Field(
        description="The budget: the prompt never counts more tokens (MEMORY_CONTEXT_TOKENIZER); "
        "1 to MEMORY_CONTEXT_MAX_TOKENS",
        examples=[1000],
    )
    query: str | None = Field(
        None, description="What to find memories for; default: the conversation's latest user message"
    )
    recent: int | None = Field(
        None,
        description="How many of the conversation's latest turns to consider; default MEMORY_CONTEXT_RECENT_TURNS, "
        "at most MEMORY_CONTEXT_MAX_RECENT_TURNS",
    )
    user_id: str | None = Field(
        None,
        description="The person the next turn is for: the user scope draws on their messages",
        json_schema_extra=AN_ID,
    )
    scope: ScopeName | None = Field(
        None,
        description="Where memories come from: earlier in this conversation, any conversation of this user, or any "
        "conversation of the tenant; default: user when user_id is given, else conversation",
    )
    mode: SearchModeName | None = Field(None, description="How memories are searched for (as search)")
    role: RoleName | None = None
    since: JsonInstant | None = Field(None, description="Memories said at or after it")
    until: JsonInstant | None = Field(None, description="Memories said at or before it")
    min_importance: float | None = None
    metadata: dict[str, Any] | None = Field(
        None, description="Only memories whose metadata contains this object (JSON containment)"
    )


class RecentOut(BaseModel):
    message: MessageOut
    content: str = Field(description="What of the message is in the prompt: all of it, or its beginning when cut")
    cut: bool = Field(description="Cut at a token boundary to fit (the prompt marks it with […])")
    tokens: int = Field(description="Tokens of its line of the prompt")

    @classmethod
    def of(cls, entry: Entry) -> RecentOut:
        return cls(message=MessageOut.of(entry.message), content=entry.content, cut=entry.cut, tokens=entry.tokens)


class MemoryOut(RecentOut):
    scores: ScoresOut
    explain: dict[str, float] = Field(description="How the search found it (as search's explain)")
    reason: str = Field(description="Why it was chosen, in words")

    @classmethod
    def of(cls, entry: Entry) -> MemoryOut:
        if entry.ranked is None:
            raise ValueError("a memory is a search result")
        s = entry.ranked.scores
        return cls(
            message=MessageOut.of(entry.message),
            content=entry.content,
            cut=entry.cut,
            tokens=entry.tokens,
            scores=ScoresOut(similarity=s.similarity, importance=s.importance, recency=s.recency, final=s.final),
            explain=dict(entry.ranked.relevance),
            reason=entry.reason,
        )


class TokensOut(BaseModel):
    recent: int = Field(description="Tokens of the recent turns' section of the prompt")
    memories: int = Field(description="Tokens of the memories' section of the prompt")
    total: int = Field(description="Tokens of the whole prompt, counted as one text: at most the budget")
    budget: int


class ContextOut(BaseModel):
    recent: list[RecentOut] = Field(description="The conversation's latest turns that fit, oldest first")
    memories: list[MemoryOut] = Field(description="Relevant messages from outside the recent window, best first")
    prompt: str = Field(description="Both as plain text, dated, for a system message; empty when there is nothing")
    tokens: TokensOut
    repeats_dropped: int = Field(description="Memories left out as repeats of a recent turn or of a better memory")

    @classmethod
    def of(cls, context: Context) -> ContextOut:
        return cls(
            recent=[RecentOut.of(e) for e in context.recent],
            memories=[MemoryOut.of(e) for e in context.memories],
            prompt=context.prompt,
            tokens=TokensOut(
                recent=context.recent_tokens,
                memories=context.memory_tokens,
                total=context.total_tokens,
                budget=context.budget,
            ),
            repeats_dropped=context.repeats_dropped,
        )
