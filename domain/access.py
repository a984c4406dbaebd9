"""Who a caller is, and which tenants it may touch."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import DomainError


class AccessDenied(DomainError):
    code = "forbidden"


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of an API key: the tenants it may touch, or every tenant when admin."""

    key_id: str
    tenants: frozenset[str]
    admin: bool = False

    def may_access(self, tenant_id: str) -> bool:
        return self.admin or tenant_id in self.tenants

    def require_tenant(self, tenant_id: str) -> None:
        if not self.may_access(tenant_id):
            raise AccessDenied(f"this API key may not access tenant '{tenant_id}'")

    def require_admin(self) -> None:
        if not self.admin:
            raise AccessDenied("this route needs an admin API key")
