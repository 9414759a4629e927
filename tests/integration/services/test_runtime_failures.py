"""What clients see when a runner is slow, gone or refuses its model, and when the schema lags."""

import asyncio
import shutil
from pathlib import Path
from typing import Any

import bentoml
import pytest

from db.settings import DatabaseSettings
from services.catalog import ModelCatalog
from services.errors import SchemaBehind
from services.gateway.wiring import build_runtime
from services.runners.core import RunnerCore
from services.runners.protocol import PredictItem, PredictOutput
from services.settings import ServingSettings
from tests.utils.databases import sqlite_url
from tests.utils.gateway import gateway_client, model_refs

pytestmark = pytest.mark.integration


def _body(tag: str) -> dict[str, Any]:
    row = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"][0]
    return {"model": tag.split(":")[0], "inputs": [row]}


@pytest.mark.asyncio
async def test_inference_past_its_timeout_is_504(reference_models: dict[str, str]) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=None, inference_timeout_s=0.2) as (client, runtime):
        runner = runtime.inference.runners["sklearn"]
        original = runner.predict

        async def slow(items: list[PredictItem]) -> list[PredictOutput]:
            await asyncio.sleep(1.0)
            return await original(items)

        runner.predict = slow
        runtime.inference.coalescers["sklearn"]._call = slow
        response = await client.post("/api/v1/predictions", json=_body(tag))

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "inference_timeout"


@pytest.mark.asyncio
async def test_unreachable_runner_is_503_and_not_ready(reference_models: dict[str, str]) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=None) as (client, runtime):

        async def refused(*_: object) -> Any:
            raise ConnectionRefusedError("runner process is gone")

        runtime.inference.runners["sklearn"].status = refused
        runtime.inference.coalescers["sklearn"]._call = refused
        response = await client.post("/api/v1/predictions", json=_body(tag))
        ready = await client.get("/ready")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_not_loaded"
    assert "runner process" not in response.text
    assert ready.status_code == 503
    assert ready.json()["error"]["details"]["checks"]["runner:sklearn"] == "unavailable"


def test_runner_refuses_to_start_on_a_tampered_model(
    reference_models: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from services.errors import ArtifactMismatch

    stored = bentoml.models.get(reference_models["fraud-xgb"])
    copy = tmp_path / "model"
    shutil.copytree(stored.path, copy)
    (copy / "model.json").write_text("{}", encoding="utf-8")

    class Tampered:
        tag, info, path = stored.tag, stored.info, str(copy)

    with pytest.raises(ArtifactMismatch):
        RunnerCore("xgboost", [Tampered()])
    assert "refusing to start" in caplog.text


@pytest.mark.asyncio
async def test_gateway_refuses_a_database_behind_the_code(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    refs = model_refs([reference_models["cancer-rf"]])
    empty = sqlite_url(tmp_path / "never-migrated.sqlite3")
    with pytest.raises(SchemaBehind, match="make migrate"):
        await build_runtime(
            runners={},
            serving=ServingSettings(),
            database=DatabaseSettings(url=empty),
            catalog=ModelCatalog.from_store(refs),
        )
