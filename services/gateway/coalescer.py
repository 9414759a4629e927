"""Coalesce concurrent requests for one runner into fewer, larger runner calls.

Every hop into a BentoML service costs about 1.5 ms of CPU per call here, more than a small
model's forward pass, so batching only inside the runner (after each request paid its hop)
buys little. The gateway therefore batches first: while `max_in_flight` calls to a runner
are outstanding, new requests wait and leave together in the next call. At low load a request
goes straight out (no timer, no added latency); under load, batches grow with the load.
"""

import asyncio
from collections.abc import Awaitable, Callable

from services.observability import COALESCED_ROWS
from services.runners.protocol import PredictItem, PredictOutput

RunnerCall = Callable[[list[PredictItem]], Awaitable[list[PredictOutput]]]


class Coalescer:
    """Per-runner queue that merges waiting requests into one runner call."""

    def __init__(
        self, call: RunnerCall, *, framework: str, max_in_flight: int, max_rows: int
    ) -> None:
        self._call = call
        self._framework = framework
        self._max_in_flight = max_in_flight
        self._max_rows = max_rows
        self._waiting: list[tuple[PredictItem, asyncio.Future[PredictOutput]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each finishes

    async def submit(self, item: PredictItem) -> PredictOutput:
        """Predict `item`'s rows, possibly together with other waiting requests."""
        future: asyncio.Future[PredictOutput] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._waiting and self._in_flight < self._max_in_flight:
            batch: list[tuple[PredictItem, asyncio.Future[PredictOutput]]] = []
            rows = 0
            while self._waiting and (
                not batch or rows + len(self._waiting[0][0].rows) <= self._max_rows
            ):
                entry = self._waiting.pop(0)
                if entry[1].done():  # its caller gave up (timeout, disconnect) before dispatch
                    continue
                batch.append(entry)
                rows += len(entry[0].rows)
            if not batch:
                return
            self._in_flight += 1
            COALESCED_ROWS.labels(framework=self._framework).observe(rows)
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[PredictItem, asyncio.Future[PredictOutput]]]) -> None:
        try:
            outputs = await self._call([item for item, _ in batch])
        except BaseException as exc:  # every waiter must learn the outcome, whatever it is
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), output in zip(batch, outputs, strict=True):
                if not future.done():
                    future.set_result(output)
        finally:
            self._in_flight -= 1
            self._dispatch()
