"""The listings an operator's console walks: the tenants a key may see, and a tenant's conversations.

An admin key sees every tenant that holds a message. A tenant key sees the tenants it is scoped
to, read from the key itself and not from the messages, so it learns nothing of any other
tenant: not even whether one exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from application.ports.directory import ConversationSummary, TenantDirectory
from domain.access import Principal
from domain.errors import FieldProblem, ValidationFailed
from domain.message import check_id, id_problem

MAX_LISTING = 1000
DEFAULT_LISTING = 100


@dataclass(frozen=True, slots=True)
class TenantPage:
    tenants: list[str]
    next_after: str | None  # the last tenant listed when another page follows; None on the last page


@dataclass(frozen=True, slots=True)
class ConversationListing:
    conversations: list[ConversationSummary]
    next_after: str | None  # the last conversation listed when another page follows; None on the last page


def check_page(after: str | None, limit: int) -> None:
    problems = []
    if after is not None and (problem := id_problem("after", after)) is not None:
        problems.append(problem)
    if not 1 <= limit <= MAX_LISTING:
        problems.append(FieldProblem("limit", f"must be between 1 and {MAX_LISTING}"))
    if problems:
        raise ValidationFailed(problems)


class BrowseTenants:
    def __init__(self, directory: TenantDirectory) -> None:
        self._directory = directory

    async def tenants(
        self, principal: Principal, *, after: str | None = None, limit: int = DEFAULT_LISTING
    ) -> TenantPage:
        """The tenants the key may see, in id order, each after `after`."""
        check_page(after, limit)
        # One more than asked tells whether another page follows, without a count.
        if principal.admin:
            found = await self._directory.tenants(after, limit + 1)
        else:
            # The key's own tenants, never the messages: it learns of no other tenant. Python's
            # order (code points) is PostgreSQL's under a C collation (the embedded server's
            # C.UTF-8); under another the two orders may differ, but each pages consistently.
            found = sorted(t for t in principal.tenants if after is None or t > after)[: limit + 1]
        page = found[:limit]
        return TenantPage(page, page[-1] if len(found) > limit else None)

    async def conversations(
        self, principal: Principal, tenant_id: str, *, after: str | None = None, limit: int = DEFAULT_LISTING
    ) -> ConversationListing:
        """The tenant's conversations in id order, each after `after`, with their figures."""
        check_id("tenant_id", tenant_id)
        check_page(after, limit)
        principal.require_tenant(tenant_id)
        found = await self._directory.conversations(tenant_id, after, limit + 1)
        page = found[:limit]
        return ConversationListing(page, page[-1].conversation_id if len(found) > limit else None)
