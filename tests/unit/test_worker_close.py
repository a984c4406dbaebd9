"""The arq worker at SIGTERM: it ends even when a cancel is lost, and a job cancelled while arq
finished it does not make the process exit with 1 (arq's close() gathers its job tasks without
return_exceptions)."""

import asyncio

import pytest

from entrypoints.worker import close_worker, run_until_stopped


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


class SwallowingWorker:
    """An arq run whose first cancel is lost below its poll loop, as seen once in CI."""

    def __init__(self) -> None:
        self.cancels_seen = 0

    async def async_run(self) -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancels_seen += 1
                if self.cancels_seen > 1:
                    raise


async def test_a_signal_ends_the_run_even_when_a_cancel_is_swallowed():
    worker, stopping = SwallowingWorker(), asyncio.Event()
    running = asyncio.create_task(run_until_stopped(worker, stopping))
    await asyncio.sleep(0.01)
    stopping.set()  # arq's on_stop, at SIGTERM
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 5)
    assert worker.cancels_seen == 2
