"""The arq worker's close at SIGTERM: a job cancelled while arq finished it must not make the
process exit with 1 (arq's close() gathers its job tasks without return_exceptions)."""

import asyncio

import pytest

from entrypoints.worker import close_worker


class ArqLikeWorker:
    """What close_worker uses of arq's Worker: its job tasks, and a close() that gathers them
    as arq's does."""

    def __init__(self, tasks: dict[str, asyncio.Task[None]]) -> None:
        self.tasks = tasks
        self.closed = False

    async def close(self) -> None:
        await asyncio.gather(*self.tasks.values())  # raises what a task ended with
        self.closed = True


async def test_a_job_cancelled_mid_finish_does_not_fail_the_close():
    finished = asyncio.Event()

    async def finishing() -> None:
        await asyncio.sleep(0.05)
        finished.set()

    cancelled = asyncio.create_task(asyncio.sleep(10))
    slow = asyncio.create_task(finishing())
    await asyncio.sleep(0)
    cancelled.cancel()  # as arq's handle_sig does, while the job was in its shielded finish_job
    worker = ArqLikeWorker({"a": cancelled, "b": slow})

    await close_worker(worker)  # raised CancelledError when it was a bare worker.close()

    assert finished.is_set()  # every job task ended before the services may stop
    assert cancelled.cancelled()


async def test_the_close_of_a_cancelled_caller_is_still_cancelled():
    async def never() -> None:
        await asyncio.Event().wait()

    worker = ArqLikeWorker({"a": asyncio.create_task(never())})
    closing = asyncio.create_task(close_worker(worker))
    await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    worker.tasks["a"].cancel()
