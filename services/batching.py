"""Coalesce concurrent work into fewer, larger calls: runner calls and prediction-log commits.

While `max_in_flight` calls are outstanding, new submissions wait and leave together in the
next call. At low load a submission goes straight out (no timer, no added latency); under load,
batches grow with the load.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class MicroBatcher(Generic[ItemT, ResultT]):
    """Merges waiting submissions into one call of `call`, which answers each item in order."""

    def __init__(
        self,
        call: Callable[[list[ItemT]], Awaitable[list[ResultT]]],
        *,
        max_in_flight: int,
        max_weight: int,
        weight: Callable[[ItemT], int] = lambda _: 1,
        observe: Callable[[int], None] = lambda _: None,
    ) -> None:
        self._call = call
        self._max_in_flight = max_in_flight
        self._max_weight = max_weight
        self._weight = weight
        self._observe = observe
        self._waiting: deque[tuple[ItemT, asyncio.Future[ResultT]]] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each finishes

    async def submit(self, item: ItemT) -> ResultT:
        """The result for `item`, computed possibly together with other waiting items."""
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._waiting and self._in_flight < self._max_in_flight:
            batch = self._take()
            if not batch:
                return
            self._in_flight += 1
            self._observe(sum(self._weight(item) for item, _ in batch))
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[tuple[ItemT, asyncio.Future[ResultT]]]:
        batch: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        total = 0
        while self._waiting:
            item, future = self._waiting[0]
            if batch and total + self._weight(item) > self._max_weight:
                break
            self._waiting.popleft()
            if future.done():  # its caller gave up (timeout, disconnect) before dispatch
                continue
            batch.append((item, future))
            total += self._weight(item)
        return batch

    async def _send(self, batch: list[tuple[ItemT, asyncio.Future[ResultT]]]) -> None:
        try:
            results = await self._call([item for item, _ in batch])
        except BaseException as exc:  # every waiter must learn the outcome, whatever it is
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._dispatch()
