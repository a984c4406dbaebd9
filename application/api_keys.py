"""Admins create, list and revoke the API keys the service keeps (hashed) in its store."""

from __future__ import annotations

from application.errors import NotFound
from application.ports.keys import ApiKeyInfo, ApiKeyStore, CreatedApiKey
from domain.access import Principal
from domain.errors import FieldProblem, ValidationFailed
from domain.message import id_problem, text_problem

MAX_NAME_CHARS = 200


class ManageApiKeys:
    def __init__(self, store: ApiKeyStore) -> None:
        self._store = store

    async def create(self, principal: Principal, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey:
        principal.require_admin()
        problems = [p for p in (id_problem("tenants", t) for t in sorted(tenants)) if p is not None]
        if not name.strip() or len(name) > MAX_NAME_CHARS:
            problems.append(FieldProblem("name", f"must be 1-{MAX_NAME_CHARS} characters"))
        elif (problem := text_problem("name", name)) is not None:  # PostgreSQL would refuse it (a 500)
            problems.append(problem)
        if not admin and not tenants:
            problems.append(FieldProblem("tenants", "a key that is not admin must hold at least one tenant"))
        if problems:
            raise ValidationFailed(problems)
        return await self._store.create(name.strip(), tenants, admin)

    async def list_keys(self, principal: Principal) -> list[ApiKeyInfo]:
        principal.require_admin()
        return await self._store.list_keys()

    async def revoke(self, principal: Principal, key_id: str) -> None:
        principal.require_admin()
        if not await self._store.revoke(key_id):
            raise NotFound(f"no API key {key_id}")
