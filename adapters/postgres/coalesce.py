"""Group commit for single writes: concurrent inserts share one statement and one commit.

While one INSERT is in flight, the writes that arrive queue up; when it returns they go
together in the next. A lone write goes at once (no timer), and under load each
statement carries many rows: PostgreSQL parses, plans and commits once for all of them,
which is most of what a one-row insert costs it. A duplicate client_message_id is resolved
row by row, as in separate statements; a failure fails every write of the statement, and
none of them is stored (the insert is one transaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from domain.message import Message

Insert = Callable[[Sequence[Message]], Awaitable[list[Message]]]
Waiting = tuple[Sequence[Message], "asyncio.Future[list[Message]]"]


class InsertCoalescer:
    def __init__(self, insert: Insert, max_rows: int = 500) -> None:
        self._insert = insert
        self._max_rows = max_rows
        self._waiting: list[Waiting] = []
        self._flusher: asyncio.Task[None] | None = None

    async def add(self, messages: Sequence[Message]) -> list[Message]:
        future: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        self._waiting.append((messages, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._waiting:
            group: list[Waiting] = []
            rows = 0
            while self._waiting and (not group or rows + len(self._waiting[0][0]) <= self._max_rows):
                messages, future = self._waiting.pop(0)
                group.append((messages, future))
                rows += len(messages)
            try:
                stored = await self._insert([m for messages, _ in group for m in messages])
            except BaseException as error:  # each caller gets the failure of its own write
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            start = 0
            for messages, future in group:
                if not future.done():  # its caller may have given up (client went away)
                    future.set_result(stored[start : start + len(messages)])
                start += len(messages)
