"""The JSON shapes of search."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.ranking import RankedMessage
from entrypoints.http.schemas.common import (
    AN_ID,
    JSON_BODY,
    JsonInstant,
    RoleName,
)
from entrypoints.http.schemas.messages import MessageOut

SearchModeName = Literal["semantic", "keyword", "hybrid"]


class SearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(json_schema_extra=AN_ID)
    query: str
    mode: SearchModeName | None = Field(
        None,
        description="semantic (meaning), keyword (shared words), hybrid (both); default MEMORY_SEARCH_DEFAULT_MODE",
    )
    top_k: int = 5
    conversation_id: str | None = Field(None, json_schema_extra=AN_ID)
    role: RoleName | None = None
    since: AwareDatetime | None = Field(
        None, description="Messages said at or after it; one before the earliest accepted time means from the start"
    )
    until: AwareDatetime | None = Field(
        None, description="Messages said at or before it; one after the latest accepted time means to the end"
    )
    min_importance: float | None = None
    user_id: str | None = Field(
        None, description="Only this user's messages (inside the tenant)", json_schema_extra=AN_ID
    )


class SearchIn(SearchArgs):
    model_config = JSON_BODY  # SearchArgs as a JSON body: strict, where the query string converts

    since: JsonInstant | None = Field(
        None, description="Messages said at or after it; one before the earliest accepted time means from the start"
    )
    until: JsonInstant | None = Field(
        None, description="Messages said at or before it; one after the latest accepted time means to the end"
    )
    metadata: dict[str, Any] | None = Field(
        None, description="Only messages whose metadata contains this object (JSON containment)"
    )


class ScoresOut(BaseModel):
    similarity: float = Field(
        description="Relevance to the query: cosine similarity (semantic), normalised full-text rank "
        "(keyword), or both fused, with what the best hits lend their neighbours (hybrid), in [0, 1]"
    )
    importance: float
    recency: float = Field(description="0.5 ** (age / half-life)")
    final: float = Field(description="w_sim*similarity + w_imp*importance + w_rec*recency")


class SearchResultOut(BaseModel):
    message: MessageOut
    scores: ScoresOut
    explain: dict[str, float] = Field(
        description="How the relevance was found: semantic / semantic_rank, keyword / keyword_rank (each "
        "present when that way of searching found the message); hybrid adds semantic_scaled / keyword_scaled "
        "(each side min-max scaled over its hits), fused = 0.4*semantic_scaled + 0.6*keyword_scaled, and "
        "neighbour, what the best hit next to it lent: similarity = (fused + 0.3*neighbour) / 1.3 (the weights "
        "are settings)"
    )

    @classmethod
    def of(cls, ranked: RankedMessage) -> SearchResultOut:
        s = ranked.scores
        return cls(
            message=MessageOut.of(ranked.message),
            scores=ScoresOut(similarity=s.similarity, importance=s.importance, recency=s.recency, final=s.final),
            explain=dict(ranked.relevance),
        )


class SearchOut(BaseModel):
    results: list[SearchResultOut]
