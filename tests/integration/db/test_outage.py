"""A database outage mid-traffic: 503s, never a 201 without its row, and recovery without restart.

The outage is a TCP proxy between the gateway and PostgreSQL that the test cuts, so the shared
server that other tests use stays up.
"""

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import bentoml
import httpx
import pytest

from tests.utils.databases import PG_HOST, PG_PORT, PG_USER, migrate, pg_url, postgres_database
from tests.utils.gateway import gateway_client
from tests.utils.tcp_proxy import cuttable_proxy

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def _predict_many(
    client: httpx.AsyncClient, body: dict[str, object], count: int
) -> list[httpx.Response]:
    return await asyncio.gather(
        *(client.post("/api/v1/predictions", json=body) for _ in range(count))
    )


async def _wait_ready(client: httpx.AsyncClient, want: int, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while (await client.get("/ready")).status_code != want:
        assert time.monotonic() < deadline, f"/ready did not turn {want} in {seconds} s"
        await asyncio.sleep(0.2)


async def _stored_ids(database: str) -> set[str]:
    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)
    try:
        return {str(row["id"]) for row in await connection.fetch("SELECT id FROM predictions")}
    finally:
        await connection.close()


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database() as name:
        migrate(pg_url(name))
        yield name


async def test_database_outage_gives_503s_and_recovers_without_restart(
    database: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    row = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"][0]
    body = {"model": "cancer-rf", "inputs": [row]}
    async with (
        cuttable_proxy(PG_HOST, PG_PORT) as proxy,
        gateway_client([tag], db_url=pg_url(database, port=proxy.port), db_pool_timeout=2.0) as (
            client,
            _,
        ),
    ):
        before = await _predict_many(client, body, 20)
        proxy.cut()
        during = await _predict_many(client, body, 20)
        not_ready = await client.get("/ready")
        proxy.restore()
        await _wait_ready(client, 200)
        after = await _predict_many(client, body, 20)
    stored = await _stored_ids(database)

    responses = before + during + after
    assert {r.status_code for r in before + after} == {201}
    assert {r.status_code for r in during} == {503}
    assert {r.json()["error"]["code"] for r in during} == {"database_unavailable"}
    assert not_ready.status_code == 503
    assert not_ready.json()["error"]["details"]["checks"]["database"].startswith("unreachable")
    created = {
        p["id"] for r in responses if r.status_code == 201 for p in r.json()["data"]["predictions"]
    }
    assert len(created) == 40
    assert created <= stored
