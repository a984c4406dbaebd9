"""The model's gate: a waiting query goes before waiting document chunks."""

import asyncio

import pytest

from adapters.embeddings.priority import Priority, PriorityGate


async def test_a_query_waiting_behind_documents_goes_first():
    gate = PriorityGate(1)
    order: list[str] = []
    release = asyncio.Event()

    async def use(name: str, priority: Priority, hold: asyncio.Event | None = None) -> None:
        async with gate.slot(priority):
            order.append(name)
            if hold is not None:
                await hold.wait()

    running = asyncio.create_task(use("chunk 1", Priority.DOCUMENTS, release))
    await asyncio.sleep(0)
    waiting = [
        asyncio.create_task(use("chunk 2", Priority.DOCUMENTS)),
        asyncio.create_task(use("chunk 3", Priority.DOCUMENTS)),
        asyncio.create_task(use("query", Priority.QUERY)),
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(running, *waiting)

    assert order == ["chunk 1", "query", "chunk 2", "chunk 3"]


async def test_a_cancelled_waiter_passes_its_turn_on():
    gate = PriorityGate(1)
    release = asyncio.Event()
    done: list[str] = []

    async def use(name: str, hold: asyncio.Event | None = None) -> None:
        async with gate.slot(Priority.DOCUMENTS):
            if hold is not None:
                await hold.wait()
            done.append(name)

    holder = asyncio.create_task(use("holder", release))
    await asyncio.sleep(0)
    gone, next_one = asyncio.create_task(use("gone")), asyncio.create_task(use("next"))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, next_one), 5)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert done == ["holder", "next"]

    async with gate.slot(Priority.QUERY):  # every slot came back
        pass


async def test_slots_bound_how_many_run_at_once():
    gate = PriorityGate(2)
    running, peak = 0, 0

    async def use() -> None:
        nonlocal running, peak
        async with gate.slot(Priority.DOCUMENTS):
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(use() for _ in range(10)))
    assert peak == 2
