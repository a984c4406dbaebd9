"""Group commit: concurrent single writes share statements, and each caller gets its own rows back."""

import asyncio

import pytest

from adapters.postgres.coalesce import InsertCoalescer
from tests.support import make


class RecordingInsert:
    """Stands in for the INSERT: records each statement's rows, answers after a yield."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.statements: list[list] = []
        self.fail_on = fail_on

    async def __call__(self, messages):
        self.statements.append(list(messages))
        await asyncio.sleep(0)
        if self.fail_on is not None and len(self.statements) == self.fail_on:
            raise ConnectionError("lost")
        return list(messages)


async def test_writes_arriving_while_one_is_in_flight_share_the_next_statement():
    insert = RecordingInsert()
    coalescer = InsertCoalescer(insert, max_rows=100)
    messages = [make("acme", f"m{i}") for i in range(20)]

    first = asyncio.create_task(coalescer.add(messages[:1]))
    for _ in range(2):  # the caller queues its row, then the flusher sends it
        await asyncio.sleep(0)
    # Its statement is in flight: no timer held it back.
    assert insert.statements == [messages[:1]]
    rest = [asyncio.create_task(coalescer.add([m])) for m in messages[1:]]
    results = [await first] + [await task for task in rest]

    assert [r for (r,) in results] == messages  # each caller gets its own row
    assert [len(s) for s in insert.statements] == [1, 19]


async def test_a_statement_never_exceeds_max_rows():
    insert = RecordingInsert()
    coalescer = InsertCoalescer(insert, max_rows=5)
    await asyncio.gather(*(coalescer.add([make("acme"), make("acme")]) for _ in range(10)))
    assert max(len(s) for s in insert.statements) <= 5
    assert sum(len(s) for s in insert.statements) == 20


async def test_a_failed_statement_fails_only_its_own_callers():
    insert = RecordingInsert(fail_on=2)
    coalescer = InsertCoalescer(insert, max_rows=3)

    outcomes = await asyncio.gather(*(coalescer.add([make("acme")]) for _ in range(7)), return_exceptions=True)

    failed = [o for o in outcomes if isinstance(o, ConnectionError)]
    assert len(failed) == len(insert.statements[1]) == 3
    assert sum(1 for o in outcomes if isinstance(o, list)) == 4


async def test_a_caller_that_gives_up_does_not_break_the_others():
    insert = RecordingInsert()
    coalescer = InsertCoalescer(insert)
    first = asyncio.create_task(coalescer.add([make("acme", "first")]))
    await asyncio.sleep(0)
    abandoned = asyncio.create_task(coalescer.add([make("acme", "abandoned")]))
    kept = asyncio.create_task(coalescer.add([make("acme", "kept")]))
    await asyncio.sleep(0)
    abandoned.cancel()

    assert (await first)[0].content == "first"
    assert (await kept)[0].content == "kept"
    with pytest.raises(asyncio.CancelledError):
        await abandoned
