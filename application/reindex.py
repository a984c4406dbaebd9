"""Rebuild the vector index from the system of record, and tell where the two drifted apart.

`memorymesh reindex` re-embeds every embedded message of a tenant (or of all) in pages and
upserts them into the configured index: the repair after a lost index, and the way to move
between stores (point MEMORY_VECTOR_STORE at the new one, reindex, switch over).
`memorymesh check-index` compares the two, tenant by tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from application.ports.embedder import Embedder
from application.ports.messages import MessageCatalog
from application.ports.vectors import VectorIndex
from application.store_messages import embedding_text, vector_record

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Drift:
    tenant_id: str
    in_store: int  # embedded messages in the system of record
    in_index: int
    missing: int  # embedded, but not in the index: search cannot find them
    extra: int  # in the index, but not embedded in the store: search ignores them

    @property
    def clean(self) -> bool:
        return self.missing == 0 and self.extra == 0


class Reindex:
    def __init__(self, catalog: MessageCatalog, index: VectorIndex, embedder: Embedder, page_size: int) -> None:
        self._catalog = catalog
        self._index = index
        self._embedder = embedder
        self._page_size = page_size

    async def tenants(self, tenant_id: str | None) -> list[str]:
        return [tenant_id] if tenant_id is not None else await self._catalog.tenants()

    async def __call__(self, tenant_id: str, on_progress: Progress) -> int:
        """Re-embed and upsert every embedded message of the tenant; return how many."""
        done, after = 0, None
        while page := await self._catalog.embedded_page(tenant_id, after, self._page_size):
            vectors = await self._embedder.embed_documents([embedding_text(m) for m in page])
            await self._index.upsert([vector_record(m, v) for m, v in zip(page, vectors, strict=True)])
            done += len(page)
            after = page[-1].id
            on_progress(len(page))
        return done

    async def drift(self, tenant_id: str) -> Drift:
        stored: set[uuid.UUID] = set()
        after = None
        while page := await self._catalog.embedded_page(tenant_id, after, 10_000):
            stored.update(m.id for m in page)
            after = page[-1].id
        indexed = await self._index.ids(tenant_id)
        return Drift(tenant_id, len(stored), len(indexed), len(stored - indexed), len(indexed - stored))
