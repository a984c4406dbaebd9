"""First start with no key configured: make one admin key so the service is usable."""

from __future__ import annotations

from application.ports.keys import ApiKeyStore, CreatedApiKey


class EnsureAdminKey:
    def __init__(self, store: ApiKeyStore, keys_configured: bool) -> None:
        self._store = store
        self._keys_configured = keys_configured

    async def __call__(self) -> CreatedApiKey | None:
        """The new key (to be shown once), or None when a key already exists."""
        if self._keys_configured:
            return None
        return await self._store.create_first("bootstrap admin", frozenset(), admin=True)
