"""The JSON shapes of the listings a console walks: tenants, and a tenant's conversations."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from application.browse_tenants import ConversationListing, TenantPage
from entrypoints.http.schemas.common import AN_ID


class ListingArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: str | None = Field(
        None, description="next_after of the previous page: the listing goes on after this id", json_schema_extra=AN_ID
    )
    limit: int = Field(100, description="Entries per page, 1-1000")


class TenantOut(BaseModel):
    tenant_id: str


class TenantsOut(BaseModel):
    tenants: list[TenantOut] = Field(
        description="In id order: with an admin key every tenant holding a message, else the key's own tenants"
    )
    next_after: str | None = Field(description="Pass as after for the next page; null on the last page")

    @classmethod
    def of(cls, page: TenantPage) -> TenantsOut:
        return cls(tenants=[TenantOut(tenant_id=t) for t in page.tenants], next_after=page.next_after)


class ConversationSummaryOut(BaseModel):
    conversation_id: str
    messages: int = Field(description="Messages stored, archived ones included")
    archived: int = Field(description="Of those, the archived ones")
    first_at: datetime = Field(description="created_at of the oldest message")
    last_at: datetime = Field(description="created_at of the newest message")


class ConversationsOut(BaseModel):
    conversations: list[ConversationSummaryOut] = Field(description="In conversation_id order")
    next_after: str | None = Field(description="Pass as after for the next page; null on the last page")

    @classmethod
    def of(cls, listing: ConversationListing) -> ConversationsOut:
        return cls(
            conversations=[
                ConversationSummaryOut(
                    conversation_id=c.conversation_id,
                    messages=c.messages,
                    archived=c.archived,
                    first_at=c.first_at,
                    last_at=c.last_at,
                )
                for c in listing.conversations
            ],
            next_after=listing.next_after,
        )


class MeOut(BaseModel):
    key_id: str = Field(description="The key's id (as GET /v1/admin/api-keys lists it)")
    admin: bool = Field(description="An admin key reaches every tenant and the admin routes")
    tenants: int = Field(description="How many tenants the key names: GET /v1/tenants lists them")
