"""``to_thread_settled``: a cancelled caller waits for the thread's work to finish."""

from __future__ import annotations

import asyncio
import threading

import pytest

from shuxin.runtime.threads import to_thread_settled


def test_cancellation_waits_for_the_thread_to_finish() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def work() -> int:
        started.set()
        release.wait(5)
        finished.append(True)
        return 1

    async def scenario() -> None:
        task = asyncio.create_task(to_thread_settled(work))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # still waiting for the thread, not abandoned
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == [True]

    asyncio.run(scenario())


def test_result_and_keyword_arguments_pass_through() -> None:
    assert asyncio.run(to_thread_settled(int, "ff", base=16)) == 255


def test_on_cancel_asks_long_work_to_stop_and_a_second_cancel_still_waits() -> None:
    started, stop = threading.Event(), threading.Event()
    steps: list[int] = []

    def long_work() -> None:  # many short steps, checking the stop flag between them
        started.set()
        for step in range(10_000):
            if stop.is_set():
                return
            steps.append(step)
            stop.wait(0.01)

    async def scenario() -> None:
        task = asyncio.create_task(to_thread_settled(long_work, on_cancel=stop.set))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        await asyncio.sleep(0)
        task.cancel()  # Ctrl-C pressed twice
        with pytest.raises(asyncio.CancelledError):
            await task
        assert stop.is_set()
        done_at = len(steps)
        await asyncio.sleep(0.1)
        assert len(steps) == done_at  # the thread had ended before the cancellation returned

    asyncio.run(scenario())
    assert len(steps) < 10_000
