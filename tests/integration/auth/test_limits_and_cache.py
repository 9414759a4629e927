"""Rate limits and the result cache against real Redis, including Redis dying mid-test."""

import asyncio
from pathlib import Path
from typing import Any

import bentoml
import pytest

from services.auth.settings import AuthSettings
from services.ratelimit.settings import RateLimitSettings
from services.redis_client import RedisSettings
from tests.integration.auth.conftest import REDIS_URL
from tests.utils.accounts import new_account
from tests.utils.gateway import gateway_client
from tests.utils.redis_server import throwaway_redis

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
# One token per 50 s: the few requests a test sends never see a refill, however slow the machine.
TIGHT = RateLimitSettings(enabled=True, inference_rate=0.02, inference_burst=3)


def _body(tag: str) -> dict[str, Any]:
    row = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"][0]
    return {"model": tag.split(":")[0], "inputs": [row]}


async def _headers(db_url: str, auth: AuthSettings, username: str) -> dict[str, str]:
    account = await new_account(db_url, auth, username, ["predictions:write", "predictions:read"])
    return account.headers


async def test_limit_is_shared_by_two_gateways_through_redis(
    auth_db: str, auth: AuthSettings, unique: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    redis = RedisSettings(url=REDIS_URL)
    headers = await _headers(auth_db, auth, f"test-shared-{unique}")
    async with (
        gateway_client([tag], db_url=auth_db, auth=auth, redis=redis, limits=TIGHT) as (first, _),
        gateway_client([tag], db_url=auth_db, auth=auth, redis=redis, limits=TIGHT) as (second, _),
    ):
        statuses = []
        for client in (first, second, first, second, first):
            response = await client.post("/api/v1/predictions", json=_body(tag), headers=headers)
            statuses.append(response.status_code)
        refused = response

    assert statuses == [201, 201, 201, 429, 429]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["ratelimit-reset"]) >= 1


async def test_limits_are_per_principal(
    auth_db: str, auth: AuthSettings, unique: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client(
        [tag], db_url=auth_db, auth=auth, redis=RedisSettings(url=REDIS_URL), limits=TIGHT
    ) as (client, _):
        first = await _headers(auth_db, auth, f"test-a-{unique}")
        second = await _headers(auth_db, auth, f"test-b-{unique}")
        for _ in range(3):
            await client.post("/api/v1/predictions", json=_body(tag), headers=first)
        other = await client.post("/api/v1/predictions", json=_body(tag), headers=second)
        success = await client.get("/api/v1/predictions", headers=first)

    assert other.status_code == 201
    assert success.status_code == 200
    assert "ratelimit-remaining" in success.headers


@pytest.mark.parametrize(("policy", "expected"), [("local", 429), ("reject", 503)])
async def test_redis_stopped_mid_test_follows_the_policy(
    policy: str,
    expected: int,
    tmp_path: Path,
    auth_db: str,
    auth: AuthSettings,
    unique: str,
    reference_models: dict[str, str],
) -> None:
    tag = reference_models["cancer-rf"]
    headers = await _headers(auth_db, auth, f"test-down-{unique}")
    with throwaway_redis(tmp_path) as redis_server:
        settings = RedisSettings(
            url=redis_server.url, on_failure=policy, timeout_s=0.2, retry_after_failure_s=0.0
        )
        async with gateway_client(
            [tag], db_url=auth_db, auth=auth, redis=settings, limits=TIGHT
        ) as (client, _):
            up = await client.post("/api/v1/predictions", json=_body(tag), headers=headers)
            redis_server.stop()
            down = [
                (await client.post("/api/v1/predictions", json=_body(tag), headers=headers))
                for _ in range(4)
            ]
            ready = await client.get("/ready")
            metrics_text = await asyncio.to_thread(_metrics_text)
            redis_server.start()
            back = await client.get("/ready")

    assert up.status_code == 201
    assert expected in {r.status_code for r in down}
    if policy == "local":
        # Limits still hold, per process: the burst of 3 lets 3 through, then 429.
        assert [r.status_code for r in down] == [201, 201, 201, 429]
        assert ready.status_code == 200
        assert ready.json()["data"]["checks"]["redis"].startswith("degraded")
    else:
        assert {r.status_code for r in down} == {503}
        assert ready.status_code == 503
    assert 'redis_failures_total{use="rate_limit"}' in metrics_text
    assert back.json()["data"]["checks"]["redis"] == "ok"


def _metrics_text() -> str:
    from prometheus_client import REGISTRY, generate_latest

    return generate_latest(REGISTRY).decode()


async def test_result_cache_hits_are_still_persisted_for_their_caller(
    auth_db: str, auth: AuthSettings, unique: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["fraud-xgb"]
    headers = await _headers(auth_db, auth, f"test-cache-{unique}")
    async with gateway_client(
        [tag], db_url=auth_db, auth=auth, redis=RedisSettings(url=REDIS_URL)
    ) as (client, runtime):
        runner = runtime.inference.runners["xgboost"]
        await client.post(
            "/api/v1/predictions", json=_body(tag), headers={**headers, "Cache-Control": "no-cache"}
        )
        calls = runner.calls
        hit = await client.post("/api/v1/predictions", json=_body(tag), headers=headers)
        calls_after_hit = runner.calls
        await client.post(
            "/api/v1/predictions", json=_body(tag), headers={**headers, "Cache-Control": "no-cache"}
        )
        mine = await client.get(
            "/api/v1/predictions",
            headers=headers,
            params={"filter[principal]": f"test-cache-{unique}"},
        )

    assert hit.status_code == 201
    assert calls_after_hit == calls
    assert runner.calls == calls + 1
    assert mine.json()["meta"]["total"] == 3
