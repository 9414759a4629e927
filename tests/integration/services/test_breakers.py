"""Circuit breakers for runners and Redis: fail fast once a failure is known, with Retry-After,
gauges that say so, and /ready that agrees with admission at every moment.

On the old code every request waited on a dead runner by itself (4-8 s each under
`bentoml serve`), and with REDIS_ON_FAILURE=reject /ready said 200 about 1.8 s before
requests were admitted again.
"""

import asyncio
import time
from pathlib import Path
from typing import Any

import bentoml
import pytest
from prometheus_client import REGISTRY

from services.errors import InferenceTimeout
from services.ratelimit.settings import RateLimitSettings
from services.redis_client import RedisSettings
from services.runners.protocol import PredictItem, PredictOutput
from tests.utils.gateway import gateway_client
from tests.utils.redis_server import throwaway_redis

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def _body(tag: str) -> dict[str, Any]:
    row = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"][0]
    return {"model": tag.split(":")[0], "inputs": [row]}


def _gauge(name: str, dependency: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"dependency": dependency})


async def test_a_dead_runner_fails_fast_after_the_first_failure_then_recovers(
    reference_models: dict[str, str],
) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=None, runner_retry_after_s=2.0) as (client, runtime):
        runner = runtime.inference.runners["sklearn"]
        coalescer = runtime.inference.coalescers["sklearn"]
        working = coalescer._call
        calls = 0

        async def dead(items: list[PredictItem]) -> list[PredictOutput]:
            nonlocal calls
            calls += 1
            await asyncio.sleep(1.0)  # the time it takes to learn the connection is gone
            raise ConnectionResetError("runner process is gone")

        coalescer._call = dead
        first = await client.post("/api/v1/predictions", json=_body(tag))
        open_gauge = _gauge("circuit_breaker_open", "runner:sklearn")
        fast, fast_s = [], []
        for _ in range(5):
            started = time.monotonic()
            fast.append(await client.post("/api/v1/predictions", json=_body(tag)))
            fast_s.append(time.monotonic() - started)
        calls_while_open = calls
        coalescer._call = working
        await asyncio.sleep(2.1)
        # The first request after the pause is refused too; it starts a background probe.
        after_pause = await client.post("/api/v1/predictions", json=_body(tag))
        await asyncio.sleep(0.2)
        recovered = await client.post("/api/v1/predictions", json=_body(tag))

    assert first.status_code == 503
    assert first.json()["error"]["code"] == "model_not_loaded"
    assert "gone" not in first.text
    assert {r.status_code for r in fast} == {503}
    assert all(1 <= int(r.headers["retry-after"]) <= 2 for r in fast)
    assert max(fast_s) < 0.5  # none waited on the runner (a call takes 1 s to fail)
    assert calls_while_open == 1
    assert open_gauge == 1
    assert after_pause.status_code == 503
    assert recovered.status_code == 201
    assert _gauge("circuit_breaker_open", "runner:sklearn") == 0
    assert _gauge("dependency_up", "runner:sklearn") == 1
    assert runner is runtime.inference.runners["sklearn"]


async def test_calls_already_waiting_on_a_runner_fail_as_soon_as_one_call_fails(
    reference_models: dict[str, str],
) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=None, batching=False, inference_timeout_s=20.0) as (
        client,
        runtime,
    ):
        calls = 0

        async def hung_then_reset(items: list[PredictItem]) -> list[PredictOutput]:
            nonlocal calls
            calls += 1
            if calls == 1:
                await asyncio.sleep(0.5)
                raise ConnectionResetError("runner process is gone")
            await asyncio.sleep(30)  # queued on the dead runner's socket: no answer, ever
            raise AssertionError("unreachable")

        runtime.inference.runners["sklearn"].predict = hung_then_reset  # type: ignore[method-assign]
        started = time.monotonic()
        responses = await asyncio.gather(
            *(client.post("/api/v1/predictions", json=_body(tag)) for _ in range(4))
        )
        elapsed = time.monotonic() - started

    assert {r.status_code for r in responses} == {503}
    assert {r.json()["error"]["code"] for r in responses} == {"model_not_loaded"}
    assert elapsed < 3.0  # not the 20 s inference timeout


async def test_ready_and_admission_agree_while_redis_comes_back(
    tmp_path: Path, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    limits = RateLimitSettings(enabled=True, inference_rate=1000, inference_burst=1000)
    with throwaway_redis(tmp_path) as redis_server:
        settings = RedisSettings(
            url=redis_server.url, on_failure="reject", timeout_s=0.2, retry_after_failure_s=2.0
        )
        async with gateway_client([tag], db_url=None, redis=settings, limits=limits) as (
            client,
            _,
        ):
            assert (await client.post("/api/v1/predictions", json=_body(tag))).status_code == 201
            redis_server.stop()
            down = await client.post("/api/v1/predictions", json=_body(tag))
            not_ready = await client.get("/ready")
            redis_server.start()
            disagreements = []
            deadline = time.monotonic() + 10
            ready_seen = False
            while time.monotonic() < deadline and not ready_seen:
                ready = await client.get("/ready")
                response = await client.post("/api/v1/predictions", json=_body(tag))
                ready_seen = ready.status_code == 200
                if ready_seen != (response.status_code == 201):
                    disagreements.append((ready.status_code, response.status_code))
                await asyncio.sleep(0.05)

    assert down.status_code == 503
    assert int(down.headers["retry-after"]) >= 1
    assert not_ready.status_code == 503
    assert ready_seen, "/ready never said 200 after Redis came back"
    assert disagreements == []


async def test_a_slow_batch_chunk_times_out_without_opening_the_runners_breaker(
    reference_models: dict[str, str],
) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=None, inference_timeout_s=0.2) as (client, runtime):
        runner = runtime.inference.runners["sklearn"]
        model = runtime.catalog.resolve(tag)
        real = runner.predict_matrix

        async def slow(*args: Any) -> Any:
            await asyncio.sleep(0.5)
            return await real(*args)

        runner.predict_matrix = slow  # type: ignore[method-assign]
        matrix = model.metadata.feature_schema.encode_rows(
            bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"]
        )
        with pytest.raises(InferenceTimeout):
            await runtime.predictions.score_block(model, matrix, timeout_s=0.3)
        breaker_after_chunk = runtime.inference.breakers["sklearn"].open
        within = await runtime.predictions.score_block(model, matrix, timeout_s=2.0)
        live = await client.post("/api/v1/predictions", json=_body(tag))

    assert breaker_after_chunk is False
    assert within.shape == (len(matrix), 2)
    assert live.status_code == 201
