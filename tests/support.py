"""Helpers the test suites share."""

from adapters.inprocess.job_queue import InProcessJobQueue
from application.store_messages import EmbeddingMode, StoreMessages, StoreSettings
from domain.message import ContentLimits
from tests.fakes.metrics import InMemoryMetrics


def inline_store(repository, index, embedder, transactions, clock, limits=None):
    """`await store(principal, command)` stores one message inline and returns it as stored."""
    use_case = StoreMessages(
        repository,
        index,
        embedder,
        transactions,
        InProcessJobQueue(),
        clock,
        StoreSettings(EmbeddingMode.INLINE, limits or ContentLimits()),
        InMemoryMetrics(),
    )

    async def store(principal, command):
        return (await use_case.one(principal, command)).message

    return store
