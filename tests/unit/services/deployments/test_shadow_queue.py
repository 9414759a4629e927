"""Shadow work waits for the response, runs a bounded number at a time, and is dropped (and
counted) when the queue is full, never blocking the caller."""

import asyncio
import uuid
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY

from services.http.context import RequestContext, current_request
from services.pipeline.shadow import ShadowJob, ShadowQueue
from tests.utils.factories import served_model

pytestmark = pytest.mark.asyncio


class GatedInference:
    """Answers every call with fixed probabilities once `gate` opens."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls = 0

    async def probabilities(self, model: Any, matrix: np.ndarray) -> list[list[float]]:
        self.calls += 1
        await self.gate.wait()
        return [[0.25, 0.75]] * len(matrix)


class NoDatabase:
    """A session factory whose commits fail: these tests look at queueing, not storage."""

    def __call__(self) -> Any:
        raise ConnectionError("no database in unit tests")


def _job(model_name: str) -> ShadowJob:
    row = {"size": 10.0, "count": 3, "flag": True, "color": "red"}
    return ShadowJob(
        request_id=uuid.uuid4().hex,
        principal=None,
        rows=[row],
        primary_ids=[uuid.uuid4()],
        shadows=(served_model(model_name, "v2"),),
    )


def _count(model: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("shadow_jobs_total", {"model": model, "outcome": outcome})
    return value or 0.0


async def test_a_full_queue_drops_new_shadow_work_and_counts_it() -> None:
    inference = GatedInference()
    queue = ShadowQueue(
        inference=inference,  # type: ignore[arg-type]
        sessions=NoDatabase(),  # type: ignore[arg-type]
        queue_size=2,
        in_flight=1,
    )
    queue.start()
    name = f"m-{uuid.uuid4().hex[:6]}"
    try:
        accepted = [queue.submit(_job(name)) for _ in range(5)]
        await asyncio.sleep(0.05)  # the worker takes the first job, so one more place frees
        accepted.append(queue.submit(_job(name)))
        accepted.append(queue.submit(_job(name)))

        assert accepted == [True, True, False, False, False, True, False]
        assert _count(name, "dropped") == 4
        assert inference.calls == 1  # one job in flight at a time
        inference.gate.set()
        await asyncio.wait_for(queue.idle(), timeout=5)
    finally:
        await queue.close()
    assert inference.calls == 3
    assert _count(name, "failed") == 3  # the commits fail here: counted, never raised


async def test_a_queue_of_size_zero_drops_everything() -> None:
    queue = ShadowQueue(
        inference=GatedInference(),  # type: ignore[arg-type]
        sessions=NoDatabase(),  # type: ignore[arg-type]
        queue_size=0,
        in_flight=1,
    )
    queue.start()
    name = f"m-{uuid.uuid4().hex[:6]}"
    try:
        assert queue.submit(_job(name)) is False
    finally:
        await queue.close()
    assert _count(name, "dropped") == 1


async def test_deferred_work_is_queued_only_once_the_response_is_sent() -> None:
    queue = ShadowQueue(
        inference=GatedInference(),  # type: ignore[arg-type]
        sessions=NoDatabase(),  # type: ignore[arg-type]
        queue_size=0,  # every submission is counted as dropped: that shows when it happened
        in_flight=1,
    )
    name = f"m-{uuid.uuid4().hex[:6]}"
    context = RequestContext(request_id="r" * 16)
    token = current_request.set(context)
    try:
        queue.defer(_job(name))
        assert _count(name, "dropped") == 0
    finally:
        current_request.reset(token)

    for callback in context.after_response:  # what the gateway middleware does after sending
        callback()
    assert _count(name, "dropped") == 1
