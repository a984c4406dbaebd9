from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from application.ports.storage import Transactions
from tests.fakes.messages import InMemoryMessageTable
from tests.fakes.vector_index import InMemoryVectorIndex


class InMemoryTransactions(Transactions):
    """Undoes the fakes' writes when the block fails, as a database transaction would."""

    def __init__(self, table: InMemoryMessageTable, index: InMemoryVectorIndex) -> None:
        self._table = table
        self._index = index

    def begin(self) -> AbstractAsyncContextManager[None]:
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        snapshot, records, archived = self._table.snapshot(), dict(self._index.records), set(self._index.archived)
        try:
            yield
        except BaseException:
            self._table.roll_back_to(snapshot)
            self._index.records, self._index.archived = records, archived
            raise
