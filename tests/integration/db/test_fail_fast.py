"""A hung or unreachable database: reads are 503 (never 500), and once the failure is known every
request fails fast with Retry-After instead of waiting out the timeouts; /ready and admission
follow the same breaker.

On the old code a frozen database held every prediction for the full write timeout and every
read until the pool gave up, and a read during an outage escaped as a 500. The database sits
behind a TCP proxy the test freezes or cuts, so the shared server other tests use stays up.
"""

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import bentoml
import httpx
import pytest

from tests.utils.databases import PG_HOST, PG_PORT, migrate, pg_url, postgres_database
from tests.utils.gateway import gateway_client
from tests.utils.tcp_proxy import cuttable_proxy

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database() as name:
        migrate(pg_url(name))
        yield name


def _body(tag: str) -> dict[str, Any]:
    row = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"][0]
    return {"model": "cancer-rf", "inputs": [row]}


async def _timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


async def test_a_frozen_database_fails_fast_once_known_and_recovers(
    database: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    async with (
        cuttable_proxy(PG_HOST, PG_PORT) as proxy,
        gateway_client(
            [tag],
            db_url=pg_url(database, port=proxy.port),
            db_write_timeout_s=1.5,
            db_pool_timeout_s=1.0,
            db_retry_after_s=3.0,
        ) as (client, _),
    ):
        assert (await client.post("/api/v1/predictions", json=_body(tag))).status_code == 201
        proxy.freeze()
        first, first_s = await _timed(client.post("/api/v1/predictions", json=_body(tag)))
        later = [
            await _timed(client.post("/api/v1/predictions", json=_body(tag))) for _ in range(5)
        ]
        read, read_s = await _timed(client.get("/api/v1/predictions"))
        ready, ready_s = await _timed(client.get("/ready"))
        proxy.thaw()
        await asyncio.sleep(0.1)
        back_ready = await client.get("/ready")
        back = await client.post("/api/v1/predictions", json=_body(tag))

    assert first.status_code == 503
    assert first.json()["error"]["code"] == "database_unavailable"
    assert first_s < 3.0  # the write timeout (1.5 s), not the statement timeout (10 s)
    for response, seconds in [*later, (read, read_s)]:
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "database_unavailable"
        assert 1 <= int(response.headers["retry-after"]) <= 3
        assert seconds < 0.5, f"waited {seconds:.2f} s on a known outage"
    assert ready.status_code == 503
    assert ready.json()["error"]["details"]["checks"]["database"].startswith("unreachable")
    assert ready_s < 1.5
    assert back_ready.status_code == 200
    assert back.status_code == 201


async def test_reads_during_an_outage_are_503_with_retry_after_not_500(
    database: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    async with (
        cuttable_proxy(PG_HOST, PG_PORT) as proxy,
        gateway_client([tag], db_url=pg_url(database, port=proxy.port), db_pool_timeout_s=1.0) as (
            client,
            _,
        ),
    ):
        created = await client.post("/api/v1/predictions", json=_body(tag))
        prediction_id = created.json()["data"]["predictions"][0]["id"]
        proxy.cut()
        responses = [
            await client.get("/api/v1/predictions"),
            await client.get(f"/api/v1/predictions/{prediction_id}"),
            await client.patch(f"/api/v1/predictions/{prediction_id}", json={"label": 1}),
            await client.delete(f"/api/v1/predictions/{prediction_id}"),
        ]

    for response in responses:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_unavailable"
        assert int(response.headers["retry-after"]) >= 1
