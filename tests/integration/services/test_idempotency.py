"""Idempotency-Key on POST /api/v1/predictions, on PostgreSQL and SQLite.

On the old code the header was ignored: a retry after a lost response stored a second set of
rows under new ids. Now a retry replays the first 201, another body under the key is a 409, and
the key is committed in the same transaction as the rows.
"""

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bentoml
import pytest
from sqlalchemy import func, select, update

from db.engine import create_engine, session_factory
from db.models import IdempotencyKey, Prediction
from db.settings import DatabaseSettings
from services.auth.principal import Principal
from services.pipeline.prediction_service import PredictionRequest
from tests.utils.databases import migrate, migrated_postgres, sqlite_url
from tests.utils.gateway import gateway_client

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
PREDICTIONS = "/api/v1/predictions"


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "idempotency.sqlite3")
        migrate(url)
        yield url
        return
    with migrated_postgres() as url:
        yield url


def _body(tag: str, row: int = 0) -> dict[str, Any]:
    inputs = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"]
    return {"model": tag.split(":")[0], "inputs": [inputs[row]]}


def _ids(response: Any) -> list[str]:
    return [p["id"] for p in response.json()["data"]["predictions"]]


async def _count(url: str, model: type[Any]) -> int:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        async with session_factory(engine)() as session:
            return int((await session.execute(select(func.count()).select_from(model))).scalar())
    finally:
        await engine.dispose()


async def test_a_retry_with_the_same_key_and_body_replays_the_first_201(
    database: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    headers = {"Idempotency-Key": "order-1234:attempt"}
    async with gateway_client([tag], db_url=database) as (client, _):
        first = await client.post(PREDICTIONS, json=_body(tag), headers=headers)
        retry = await client.post(PREDICTIONS, json=_body(tag), headers=headers)

    assert first.status_code == retry.status_code == 201
    assert _ids(retry) == _ids(first)
    assert retry.json()["data"] == first.json()["data"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert retry.json()["meta"]["model_version"] == tag
    assert await _count(database, Prediction) == 1
    assert await _count(database, IdempotencyKey) == 1


async def test_the_same_key_with_another_body_is_a_409(
    database: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    headers = {"Idempotency-Key": "reused-key-1"}
    async with gateway_client([tag], db_url=database) as (client, _):
        first = await client.post(PREDICTIONS, json=_body(tag, 0), headers=headers)
        other = await client.post(PREDICTIONS, json=_body(tag, 1), headers=headers)

    assert first.status_code == 201
    assert other.status_code == 409
    error = other.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert error["details"] == {"parameter": "Idempotency-Key"}
    assert await _count(database, Prediction) == 1


async def test_concurrent_requests_with_one_key_store_once_and_all_get_the_same_ids(
    database: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    headers = {"Idempotency-Key": "burst-key-1"}
    async with gateway_client([tag], db_url=database) as (client, _):
        responses = await asyncio.gather(
            *(client.post(PREDICTIONS, json=_body(tag), headers=headers) for _ in range(8))
        )

    assert {r.status_code for r in responses} == {201}
    assert len({tuple(_ids(r)) for r in responses}) == 1
    assert await _count(database, Prediction) == 1


async def test_keys_belong_to_their_principal(
    database: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=database) as (_, runtime):
        results = [
            await runtime.predictions.predict(
                PredictionRequest(
                    model="cancer-rf",
                    inputs=_body(tag, row)["inputs"],
                    caller=Principal(subject=name, scopes=frozenset({"admin"}), method="jwt"),
                    request_id=uuid.uuid4().hex,
                    idempotency_key="same-key-everywhere",
                )
            )
            for name, row in (("alice", 0), ("bob", 1))
        ]

    assert results[0].rows[0].id != results[1].rows[0].id
    assert not any(result.replayed for result in results)
    assert await _count(database, Prediction) == 2


async def test_an_expired_key_starts_afresh(
    database: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    headers = {"Idempotency-Key": "expiring-key"}
    async with gateway_client([tag], db_url=database) as (client, runtime):
        first = await client.post(PREDICTIONS, json=_body(tag), headers=headers)
        assert runtime.store is not None
        async with runtime.store.sessions() as session, session.begin():
            await session.execute(
                update(IdempotencyKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        again = await client.post(PREDICTIONS, json=_body(tag, 1), headers=headers)

    assert first.status_code == again.status_code == 201
    assert _ids(again) != _ids(first)
    assert "idempotent-replayed" not in again.headers
    assert await _count(database, IdempotencyKey) == 1


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path / "keys.sqlite3")
    migrate(url)
    return url


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9"])
async def test_a_malformed_key_is_a_400_naming_the_header(
    key: str, reference_models: dict[str, str], sqlite_db: str
) -> None:
    url = sqlite_db
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=url) as (client, _):
        response = await client.post(
            PREDICTIONS, json=_body(tag), headers={"Idempotency-Key": key.encode("utf-8")}
        )

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"parameter": "Idempotency-Key"}
    assert await _count(url, Prediction) == 0
