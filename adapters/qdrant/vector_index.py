"""Nearest-neighbour search in Qdrant: one collection for every tenant, as Qdrant recommends.

The tenant is a payload field indexed as the tenant key (is_tenant), so Qdrant keeps each
tenant's points together; every search filters on it. The search filters are payload
indexes too, and created_at is kept as a Unix timestamp so it can be ranged. PostgreSQL
stays the system of record: a point whose message is not (or no longer) embedded there
is never answered, because search keeps only the hits it finds as embedded rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from qdrant_client import AsyncQdrantClient, models

from application.ports.filters import SearchFilters
from application.ports.storage import StorageUnavailable
from application.ports.vectors import KEEP, Keep, VectorHit, VectorIndex, VectorRecord

KEYWORD_FIELDS = ("conversation_id", "role", "user_id")
NUMBER_FIELDS = ("created_at", "importance")
BOOL_FIELDS = ("archived",)


class QdrantIndexError(Exception):
    """The collection cannot serve this deployment as it is; the message says what to do."""


async def prepare_collection(client: AsyncQdrantClient, collection: str, dimensions: int) -> None:
    """Create the collection and its payload indexes, or check that the existing one fits."""
    if await client.collection_exists(collection):
        info = await client.get_collection(collection)
        vectors = info.config.params.vectors
        size = vectors.size if isinstance(vectors, models.VectorParams) else None
        if size != dimensions:
            raise QdrantIndexError(
                f"the Qdrant collection '{collection}' holds {size}-dimensional vectors but the embedder makes "
                f"{dimensions}-dimensional ones: set MEMORY_QDRANT_COLLECTION to a new collection and run "
                "`memorymesh reindex`, or go back to the model that made them"
            )
        # Collections made before a field existed get its index now.
        for field, schema in [(f, models.PayloadSchemaType.BOOL) for f in BOOL_FIELDS] + [
            (f, models.PayloadSchemaType.KEYWORD) for f in KEYWORD_FIELDS
        ]:
            if field not in (info.payload_schema or {}):
                await client.create_payload_index(collection, field, field_schema=schema)
        return
    await client.create_collection(
        collection, vectors_config=models.VectorParams(size=dimensions, distance=models.Distance.COSINE)
    )
    await client.create_payload_index(
        collection,
        "tenant_id",
        field_schema=models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
    )
    for field in KEYWORD_FIELDS:
        await client.create_payload_index(collection, field, field_schema=models.PayloadSchemaType.KEYWORD)
    for field in NUMBER_FIELDS:
        await client.create_payload_index(collection, field, field_schema=models.PayloadSchemaType.FLOAT)
    for field in BOOL_FIELDS:
        await client.create_payload_index(collection, field, field_schema=models.PayloadSchemaType.BOOL)


def tenant_filter(tenant_id: str, filters: SearchFilters) -> models.Filter:
    must: list[models.Condition] = [models.FieldCondition(key="tenant_id", match=models.MatchValue(value=tenant_id))]
    if filters.conversation_id is not None:
        must.append(
            models.FieldCondition(key="conversation_id", match=models.MatchValue(value=filters.conversation_id))
        )
    if filters.role is not None:
        must.append(models.FieldCondition(key="role", match=models.MatchValue(value=filters.role.value)))
    if filters.since is not None or filters.until is not None:
        must.append(
            models.FieldCondition(
                key="created_at",
                range=models.Range(
                    gte=filters.since.timestamp() if filters.since else None,
                    lte=filters.until.timestamp() if filters.until else None,
                ),
            )
        )
    if filters.min_importance is not None:
        must.append(models.FieldCondition(key="importance", range=models.Range(gte=filters.min_importance)))
    if filters.user_id is not None:
        must.append(models.FieldCondition(key="user_id", match=models.MatchValue(value=filters.user_id)))
    # must_not rather than must archived=false: points written before the flag existed lack it.
    return models.Filter(
        must=must, must_not=[models.FieldCondition(key="archived", match=models.MatchValue(value=True))]
    )


def points_of(tenant_id: str, message_ids: Sequence[uuid.UUID]) -> models.Filter:
    """These points, only where they belong to the tenant."""
    return models.Filter(
        must=[
            models.FieldCondition(key="tenant_id", match=models.MatchValue(value=tenant_id)),
            models.HasIdCondition(has_id=[str(i) for i in message_ids]),
        ]
    )


class QdrantVectorIndex(VectorIndex):
    def __init__(self, client: AsyncQdrantClient, collection: str) -> None:
        self._client = client
        self._collection = collection

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        if not records:
            return
        points = [
            models.PointStruct(
                id=str(r.message_id),
                vector=list(r.vector),
                payload={
                    "tenant_id": r.tenant_id,
                    "conversation_id": r.conversation_id,
                    "role": r.role.value,
                    "created_at": r.created_at.timestamp(),
                    "importance": r.importance,
                    "archived": r.archived,
                    "user_id": r.user_id,
                },
            )
            for r in records
        ]
        try:
            await self._client.upsert(self._collection, points=points, wait=True)
        except Exception as error:  # any transport failure: the embedding work retries later
            raise StorageUnavailable(f"Qdrant is unavailable: {type(error).__name__}: {error}") from error

    async def search(self, tenant_id: str, vector: Sequence[float], k: int, filters: SearchFilters) -> list[VectorHit]:
        try:
            answer = await self._client.query_points(
                self._collection,
                query=list(vector),
                query_filter=tenant_filter(tenant_id, filters),
                limit=k,
                with_payload=False,
            )
        except Exception as error:
            raise StorageUnavailable(f"Qdrant is unavailable: {type(error).__name__}: {error}") from error
        hits = [VectorHit(uuid.UUID(str(point.id)), float(point.score)) for point in answer.points]
        hits.sort(key=lambda h: (-h.similarity, str(h.message_id)))
        return hits

    async def delete(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> int:
        if not message_ids:
            return 0
        return await self._delete(points_of(tenant_id, message_ids))

    async def drop_tenant(self, tenant_id: str) -> int:
        return await self._delete(
            models.Filter(must=[models.FieldCondition(key="tenant_id", match=models.MatchValue(value=tenant_id))])
        )

    async def set_fields(
        self,
        tenant_id: str,
        message_ids: Sequence[uuid.UUID],
        *,
        archived: bool | None = None,
        importance: float | None = None,
        user_id: str | Keep | None = KEEP,
    ) -> None:
        payload: dict[str, object] = {}
        if archived is not None:
            payload["archived"] = archived
        if importance is not None:
            payload["importance"] = importance
        if not isinstance(user_id, Keep):
            payload["user_id"] = user_id  # null matches no user filter
        if not message_ids or not payload:
            return
        try:
            await self._client.set_payload(
                self._collection,
                payload=payload,
                points=models.FilterSelector(filter=points_of(tenant_id, message_ids)),
                wait=True,
            )
        except Exception as error:
            raise StorageUnavailable(f"Qdrant is unavailable: {type(error).__name__}: {error}") from error

    async def check(self) -> None:
        try:
            await self._client.get_collection(self._collection)
        except Exception as error:  # readiness reports any failure, whatever its kind
            raise StorageUnavailable(f"Qdrant does not answer: {type(error).__name__}: {error}") from error

    async def ids(self, tenant_id: str) -> set[uuid.UUID]:
        found: set[uuid.UUID] = set()
        tenant = models.Filter(must=[models.FieldCondition(key="tenant_id", match=models.MatchValue(value=tenant_id))])
        offset: models.ExtendedPointId | None = None
        while True:
            points, offset = await self._client.scroll(
                self._collection, scroll_filter=tenant, limit=1000, offset=offset, with_payload=False
            )
            found.update(uuid.UUID(str(p.id)) for p in points)
            if offset is None:
                return found

    async def _delete(self, selector: models.Filter) -> int:
        """Delete the points the filter selects; return how many there were."""
        try:
            held = await self._client.count(self._collection, count_filter=selector, exact=True)
            await self._client.delete(
                self._collection, points_selector=models.FilterSelector(filter=selector), wait=True
            )
        except Exception as error:
            raise StorageUnavailable(f"Qdrant is unavailable: {type(error).__name__}: {error}") from error
        return held.count
