"""A gate of n slots where a waiting query goes before waiting documents.

The model runs one encode at a time. Background embedding sends long runs of document
chunks; a search's query embedding must not queue behind all of them (measured: 3 s
per search while a 3,000-message backlog drained, with 256-message claims). So every
encode takes a slot here, and when a slot frees, the waiting query gets it first.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Priority(enum.IntEnum):
    QUERY = 0
    DOCUMENTS = 1


class PriorityGate:
    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @asynccontextmanager
    async def slot(self, priority: Priority) -> AsyncIterator[None]:
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (priority, next(self._order), turn))
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():  # the slot was handed over as we were cancelled
                    self._release()
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():  # a cancelled waiter's turn passes to the next
                turn.set_result(None)
                return
        self._free += 1
