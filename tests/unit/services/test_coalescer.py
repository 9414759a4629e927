"""Concurrent requests for one runner leave together once the runner is busy."""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from services.pipeline.inference import Coalescer
from services.runners.protocol import PredictItem, PredictOutput


class GatedRunner:
    """A runner call that records its items and answers only when the test releases it.

    Each row's output echoes the row, so a caller can tell its own answer from another's.
    """

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls: list[list[PredictItem]] = []
        self._gates: list[asyncio.Event] = []
        self._error = error

    async def __call__(self, items: list[PredictItem]) -> list[PredictOutput]:
        gate = asyncio.Event()
        self.calls.append(items)
        self._gates.append(gate)
        await gate.wait()
        if self._error is not None:
            raise self._error
        return [PredictOutput(probabilities=[[row[0], -row[0]] for row in i.rows]) for i in items]

    def release(self, call: int) -> None:
        self._gates[call].set()

    def rows_per_call(self) -> list[int]:
        return [sum(len(item.rows) for item in call) for call in self.calls]


def _item(*values: float) -> PredictItem:
    return PredictItem(model="m:v1", rows=[[value] for value in values])


def _run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout=5.0))


async def _let_tasks_start() -> None:
    """One event-loop turn: every task created so far runs up to its first await.

    A deterministic yield (asyncio runs ready callbacks in order), not a timed wait.
    """
    await asyncio.sleep(0)


async def _until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Let the event loop run until `condition` holds; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await _let_tasks_start()


def test_a_request_at_low_load_goes_straight_out() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        coalescer = Coalescer(runner, framework="unit", max_in_flight=1, max_rows=64)

        task = asyncio.create_task(coalescer.submit(_item(1.0)))
        await _until(lambda: len(runner.calls) == 1)
        runner.release(0)

        assert (await task).probabilities == [[1.0, -1.0]]

    _run(scenario)


def test_requests_waiting_on_a_busy_runner_are_merged_into_one_call() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        coalescer = Coalescer(runner, framework="unit", max_in_flight=1, max_rows=64)

        first = asyncio.create_task(coalescer.submit(_item(0.0)))
        await _until(lambda: len(runner.calls) == 1)
        waiting = [asyncio.create_task(coalescer.submit(_item(float(i)))) for i in range(1, 6)]
        await _let_tasks_start()
        runner.release(0)
        await _until(lambda: len(runner.calls) == 2)
        runner.release(1)
        await asyncio.gather(first, *waiting)

        assert [len(call) for call in runner.calls] == [1, 5]

    _run(scenario)


def test_each_caller_gets_its_own_output_from_a_merged_call() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        coalescer = Coalescer(runner, framework="unit", max_in_flight=1, max_rows=64)

        blocker = asyncio.create_task(coalescer.submit(_item(0.0)))
        await _until(lambda: len(runner.calls) == 1)
        items = [_item(1.0), _item(2.0, 3.0), _item(4.0)]
        tasks = [asyncio.create_task(coalescer.submit(item)) for item in items]
        await _let_tasks_start()
        runner.release(0)
        await _until(lambda: len(runner.calls) == 2)
        runner.release(1)
        outputs = await asyncio.gather(*tasks)
        await blocker

        assert [output.probabilities for output in outputs] == [
            [[1.0, -1.0]],
            [[2.0, -2.0], [3.0, -3.0]],
            [[4.0, -4.0]],
        ]

    _run(scenario)


def test_up_to_max_in_flight_calls_run_at_once() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        coalescer = Coalescer(runner, framework="unit", max_in_flight=2, max_rows=64)

        tasks = [asyncio.create_task(coalescer.submit(_item(float(i)))) for i in range(4)]
        await _until(lambda: len(runner.calls) == 2)
        await _let_tasks_start()

        assert [len(call) for call in runner.calls] == [1, 1]
        runner.release(0)
        await _until(lambda: len(runner.calls) == 3)
        assert [len(call) for call in runner.calls] == [1, 1, 2]
        runner.release(1)
        runner.release(2)
        await asyncio.gather(*tasks)

    _run(scenario)


def test_a_runner_error_reaches_every_waiter_of_its_call() -> None:
    async def scenario() -> None:
        error = RuntimeError("runner down")
        runner = GatedRunner(error=error)
        coalescer = Coalescer(runner, framework="unit", max_in_flight=1, max_rows=64)

        blocker = asyncio.create_task(coalescer.submit(_item(0.0)))
        await _until(lambda: len(runner.calls) == 1)
        tasks = [asyncio.create_task(coalescer.submit(_item(float(i)))) for i in range(1, 4)]
        await _let_tasks_start()
        runner.release(0)
        await _until(lambda: len(runner.calls) == 2)
        runner.release(1)
        results = await asyncio.gather(blocker, *tasks, return_exceptions=True)

        assert [len(call) for call in runner.calls] == [1, 3]
        assert all(result is error for result in results)

    _run(scenario)


def test_a_failed_call_frees_its_slot_for_the_next_request() -> None:
    async def scenario() -> None:
        failing = GatedRunner(error=RuntimeError("once"))
        coalescer = Coalescer(failing, framework="unit", max_in_flight=1, max_rows=64)
        first = asyncio.create_task(coalescer.submit(_item(1.0)))
        await _until(lambda: len(failing.calls) == 1)
        failing.release(0)
        with pytest.raises(RuntimeError, match="once"):
            await first

        second = asyncio.create_task(coalescer.submit(_item(2.0)))
        await _until(lambda: len(failing.calls) == 2)
        failing.release(1)

        with pytest.raises(RuntimeError, match="once"):
            await second

    _run(scenario)


def test_a_merged_call_stops_before_passing_max_rows() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        coalescer = Coalescer(runner, framework="unit", max_in_flight=1, max_rows=5)

        tasks = [asyncio.create_task(coalescer.submit(_item(0.0)))]
        await _until(lambda: len(runner.calls) == 1)
        for size in (2, 2, 2, 3):
            tasks.append(asyncio.create_task(coalescer.submit(_item(*[1.0] * size))))
        await _let_tasks_start()
        runner.release(0)
        await _until(lambda: len(runner.calls) == 2)
        runner.release(1)
        await _until(lambda: len(runner.calls) == 3)
        runner.release(2)
        await asyncio.gather(*tasks)

        assert runner.rows_per_call() == [1, 4, 5]

    _run(scenario)


def test_a_request_larger_than_max_rows_still_goes_out_alone() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        coalescer = Coalescer(runner, framework="unit", max_in_flight=1, max_rows=2)

        task = asyncio.create_task(coalescer.submit(_item(1.0, 2.0, 3.0)))
        await _until(lambda: len(runner.calls) == 1)
        runner.release(0)

        assert len((await task).probabilities) == 3
        assert runner.rows_per_call() == [3]

    _run(scenario)


def test_a_waiter_cancelled_before_dispatch_is_left_out_of_the_call() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        coalescer = Coalescer(runner, framework="unit", max_in_flight=1, max_rows=64)

        blocker = asyncio.create_task(coalescer.submit(_item(0.0)))
        await _until(lambda: len(runner.calls) == 1)
        kept = asyncio.create_task(coalescer.submit(_item(1.0)))
        gone = asyncio.create_task(coalescer.submit(_item(2.0)))
        also_kept = asyncio.create_task(coalescer.submit(_item(3.0)))
        await _let_tasks_start()
        gone.cancel()
        runner.release(0)
        await _until(lambda: len(runner.calls) == 2)
        runner.release(1)

        assert [item.rows for item in runner.calls[1]] == [[[1.0]], [[3.0]]]
        assert (await kept).probabilities == [[1.0, -1.0]]
        assert (await also_kept).probabilities == [[3.0, -3.0]]
        assert gone.cancelled()
        await blocker

    _run(scenario)


def test_a_waiter_cancelled_during_its_call_does_not_disturb_the_others() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        coalescer = Coalescer(runner, framework="unit", max_in_flight=1, max_rows=64)

        blocker = asyncio.create_task(coalescer.submit(_item(0.0)))
        await _until(lambda: len(runner.calls) == 1)
        gone = asyncio.create_task(coalescer.submit(_item(1.0)))
        kept = asyncio.create_task(coalescer.submit(_item(2.0)))
        await _let_tasks_start()
        runner.release(0)
        await _until(lambda: len(runner.calls) == 2)
        gone.cancel()
        runner.release(1)

        assert (await kept).probabilities == [[2.0, -2.0]]
        assert gone.cancelled()
        await blocker

    _run(scenario)
