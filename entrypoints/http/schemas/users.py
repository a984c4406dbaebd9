"""The JSON shapes of a user's routes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class UserErasureOut(BaseModel):
    tenant_id: str
    user_id: str
    deleted: dict[str, int] = Field(
        description="What was deleted: messages, vectors, and conversations (those that held one of the messages)"
    )
