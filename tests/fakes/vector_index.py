from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import replace

from application.ports.filters import SearchFilters
from application.ports.vectors import KEEP, Keep, VectorHit, VectorIndex, VectorRecord


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class InMemoryVectorIndex(VectorIndex):
    """Exact search by brute force."""

    def __init__(self) -> None:
        self.records: dict[uuid.UUID, VectorRecord] = {}
        self.archived: set[uuid.UUID] = set()

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        for record in records:
            self.records[record.message_id] = record
            (self.archived.add if record.archived else self.archived.discard)(record.message_id)

    async def search(self, tenant_id: str, vector: Sequence[float], k: int, filters: SearchFilters) -> list[VectorHit]:
        hits = [
            VectorHit(r.message_id, cosine(vector, r.vector))
            for r in self.records.values()
            if r.tenant_id == tenant_id and r.message_id not in self.archived and filters.admits_record(r)
        ]
        hits.sort(key=lambda h: (-h.similarity, str(h.message_id)))
        return hits[:k]

    async def delete(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> int:
        count = 0
        for message_id in message_ids:
            record = self.records.get(message_id)
            if record is not None and record.tenant_id == tenant_id:
                del self.records[message_id]
                self.archived.discard(message_id)
                count += 1
        return count

    async def drop_tenant(self, tenant_id: str) -> int:
        kept = {i: r for i, r in self.records.items() if r.tenant_id != tenant_id}
        dropped = len(self.records) - len(kept)
        self.archived -= set(self.records) - set(kept)
        self.records = kept
        return dropped

    async def set_fields(
        self,
        tenant_id: str,
        message_ids: Sequence[uuid.UUID],
        *,
        archived: bool | None = None,
        importance: float | None = None,
        user_id: str | Keep | None = KEEP,
    ) -> None:
        for message_id in message_ids:
            record = self.records.get(message_id)
            if record is None or record.tenant_id != tenant_id:
                continue
            if archived is not None:
                (self.archived.add if archived else self.archived.discard)(message_id)
            if importance is not None:
                record = self.records[message_id] = replace(record, importance=importance)
            if not isinstance(user_id, Keep):
                self.records[message_id] = replace(record, user_id=user_id)

    async def ids(self, tenant_id: str) -> set[uuid.UUID]:
        return {i for i, r in self.records.items() if r.tenant_id == tenant_id}

    async def check(self) -> None:
        return None
