"""The prediction log through the real gateway app, on SQLite and on PostgreSQL."""

import asyncio
import json
from typing import Any

import bentoml
import httpx
import pytest

from tests.utils.gateway import gateway_client

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def _golden_rows(tag: str, count: int = 1) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"]
    return rows[:count]


async def _predict(
    client: httpx.AsyncClient, tag: str, rows: int = 1, inputs: list[dict[str, Any]] | None = None
) -> httpx.Response:
    return await client.post(
        "/api/v1/predictions",
        json={"model": tag.split(":")[0], "inputs": inputs or _golden_rows(tag, rows)},
    )


async def test_every_201_of_200_concurrent_predictions_has_its_row(
    db_url: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["fraud-xgb"]
    async with gateway_client([tag], db_url=db_url) as (client, _):
        # Read the store once: 200 synchronous reads inside the coroutines would block the loop
        # that serves the first requests, past the inference timeout on a loaded machine.
        rows = _golden_rows(tag)
        responses = await asyncio.gather(*(_predict(client, tag, inputs=rows) for _ in range(200)))
        assert [r.status_code for r in responses] == [201] * 200
        ids = {p["id"] for r in responses for p in r.json()["data"]["predictions"]}
        listed = await client.get("/api/v1/predictions", params={"limit": 200})
        export = await client.get("/api/v1/predictions/export")

    assert listed.json()["meta"]["total"] == 200
    assert {row["id"] for row in listed.json()["data"]} == ids
    assert {json.loads(line)["id"] for line in export.text.splitlines()} == ids


async def test_a_prediction_can_be_read_labelled_and_deleted(
    db_url: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=db_url) as (client, _):
        created = (await _predict(client, tag)).json()["data"]["predictions"][0]
        path = f"/api/v1/predictions/{created['id']}"

        fetched = await client.get(path)
        labelled = await client.patch(path, json={"label": "benign"})
        wrong = await client.patch(path, json={"label": "maybe"})
        only_labelled = await client.get("/api/v1/predictions", params={"filter[labelled]": "true"})
        deleted = await client.delete(path)
        gone = await client.get(path)

    assert fetched.status_code == 200
    assert fetched.json()["data"]["outputs"] == created["outputs"]
    assert fetched.json()["data"]["inputs"] == _golden_rows(tag)[0]
    assert labelled.status_code == 200
    assert labelled.json()["data"]["label"] == "benign"
    assert labelled.json()["data"]["labelled_at"] is not None
    assert wrong.status_code == 422
    assert [row["id"] for row in only_labelled.json()["data"]] == [created["id"]]
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"


async def test_pagination_edges(db_url: str, reference_models: dict[str, str]) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=db_url) as (client, _):
        empty = await client.get("/api/v1/predictions")
        await _predict(client, tag, rows=5)
        last = await client.get("/api/v1/predictions", params={"page": 3, "limit": 2})
        beyond = await client.get("/api/v1/predictions", params={"page": 4, "limit": 2})
        too_large = await client.get("/api/v1/predictions", params={"limit": 201})
        zero = await client.get("/api/v1/predictions", params={"page": 0})

    assert empty.json()["data"] == []
    assert empty.json()["meta"] | {"timestamp": None, "request_id": None} == {
        "total": 0,
        "pages": 0,
        "page": 1,
        "limit": 50,
        "timestamp": None,
        "request_id": None,
        "model_version": None,
    }
    assert len(last.json()["data"]) == 1
    assert last.json()["meta"]["pages"] == 3
    assert beyond.json()["data"] == []
    for response in (too_large, zero):
        assert response.status_code == 400
    assert too_large.json()["error"]["details"]["parameter"] == "limit"


async def test_sort_and_filters(db_url: str, reference_models: dict[str, str]) -> None:
    fraud, cancer = reference_models["fraud-xgb"], reference_models["cancer-rf"]
    async with gateway_client([fraud, cancer], db_url=db_url) as (client, _):
        first = await _predict(client, fraud, rows=2)
        await _predict(client, cancer, rows=3)
        created_at = (
            await client.get(f"/api/v1/predictions/{first.json()['data']['predictions'][0]['id']}")
        ).json()["data"]["created_at"]
        by_model = await client.get("/api/v1/predictions", params={"filter[model]": "fraud-xgb"})
        by_version = await client.get(
            "/api/v1/predictions",
            params={"filter[model]": "cancer-rf", "filter[model_version]": cancer.split(":")[1]},
        )
        no_version = await client.get(
            "/api/v1/predictions", params={"filter[model_version]": "no-such-version"}
        )
        after = await client.get(
            "/api/v1/predictions", params={"filter[created_after]": created_at}
        )
        oldest_first = await client.get("/api/v1/predictions", params={"sort": "created_at"})

    assert by_model.json()["meta"]["total"] == 2
    assert by_version.json()["meta"]["total"] == 3
    assert no_version.json()["meta"]["total"] == 0
    assert after.json()["meta"]["total"] == 3
    models = [row["model"]["name"] for row in oldest_first.json()["data"]]
    assert models == ["fraud-xgb"] * 2 + ["cancer-rf"] * 3


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"filter[password]": "x"}, "filter[password]"),
        ({"sort": "id; DROP TABLE predictions"}, "sort"),
        ({"sort": "-inputs"}, "sort"),
        ({"filter[labelled]": "yes"}, "filter[labelled]"),
        ({"filter[created_after]": "yesterday"}, "filter[created_after]"),
        ({"order": "created_at"}, "order"),
        ({"filter[model]": "x" * 201}, "filter[model]"),
    ],
)
async def test_bad_query_parameters_are_400_naming_the_parameter(
    params: dict[str, str], parameter: str, db_url: str, reference_models: dict[str, str]
) -> None:
    async with gateway_client([reference_models["cancer-rf"]], db_url=db_url) as (client, _):
        response = await client.get("/api/v1/predictions", params=params)

    assert response.status_code == 400
    assert response.json()["error"]["details"]["parameter"] == parameter


async def test_injection_in_a_filter_value_is_only_a_value(
    db_url: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=db_url) as (client, _):
        await _predict(client, tag)
        injected = await client.get("/api/v1/predictions", params={"filter[model]": "x' OR '1'='1"})
        still_there = await client.get("/api/v1/predictions")

    assert injected.status_code == 200
    assert injected.json()["meta"]["total"] == 0
    assert still_there.json()["meta"]["total"] == 1


async def test_malformed_prediction_id_is_a_validation_error(
    db_url: str, reference_models: dict[str, str]
) -> None:
    async with gateway_client([reference_models["cancer-rf"]], db_url=db_url) as (client, _):
        response = await client.get("/api/v1/predictions/not-a-uuid")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
