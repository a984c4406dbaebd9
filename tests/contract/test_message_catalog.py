"""What every MessageCatalog promises: the walks over stored messages that maintenance takes."""

from domain.message import EmbeddingStatus
from tests.support import make, tenant


async def test_message_ids_are_bounded_and_scoped(backend):
    t = tenant()
    for i in range(5):
        await backend.messages.add(make(t, conversation_id="a" if i < 3 else "b"))
    await backend.messages.add(make(tenant()))
    assert len(await backend.catalog.message_ids(t, None, 4)) == 4
    assert len(await backend.catalog.message_ids(t, None, 100)) == 5
    assert len(await backend.catalog.message_ids(t, "a", 100)) == 3


async def test_embedded_messages_page_in_id_order_and_tenants_are_listed(queue_backend):
    messages, catalog = queue_backend.messages, queue_backend.catalog
    t = tenant()
    embedded = [make(t, f"m{i}", embedding_status=EmbeddingStatus.EMBEDDED) for i in range(5)]
    await messages.add_many(
        [*embedded, make(t, "pending"), make("other-tenant", embedding_status=EmbeddingStatus.EMBEDDED)]
    )

    first = await catalog.embedded_page(t, None, 3)
    rest = await catalog.embedded_page(t, first[-1].id, 3)

    assert [m.id for m in first + rest] == sorted(m.id for m in embedded)
    assert await catalog.embedded_page(t, rest[-1].id, 3) == []
    assert await catalog.tenants() == sorted([t, "other-tenant"])
