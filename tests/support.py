"""Helpers the test suites share."""

from adapters.memory.job_queue import InMemoryJobQueue
from adapters.memory.metrics import InMemoryMetrics
from application.store_messages import EmbeddingMode, StoreMessages, StoreSettings
from domain.message import ContentLimits


def inline_store(repository, index, embedder, transactions, clock, limits=None):
    """`await store(principal, command)` stores one message inline and returns it as stored."""
    use_case = StoreMessages(
        repository,
        index,
        embedder,
        transactions,
        InMemoryJobQueue(),
        clock,
        StoreSettings(EmbeddingMode.INLINE, limits or ContentLimits()),
        InMemoryMetrics(),
    )

    async def store(principal, command):
        return (await use_case.one(principal, command)).message

    return store
