"""The gateway and its runners under a real `bentoml serve`: exact outputs, batching, bursts."""

import asyncio
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import BURST, ServedGateway
from tests.utils.load import NO_CACHE, PREDICTIONS, post_concurrently, prediction_bodies
from tests.utils.metrics import histogram_totals
from tests.utils.served_models import distinct_rows, golden_examples, output_classes

pytestmark = pytest.mark.e2e

RECIPES = ("fraud-xgb", "cancer-rf", "digits-mlp")
LOAD = 128


def _probabilities(response: httpx.Response) -> list[list[float]]:
    assert response.status_code == 201, response.text
    return [
        list(prediction["outputs"]["probabilities"].values())
        for prediction in response.json()["data"]["predictions"]
    ]


def _metrics(gateway: ServedGateway) -> str:
    response = httpx.get(f"{gateway.base_url}/metrics", timeout=10.0)
    assert response.status_code == 200
    return response.text


def test_startup_burst_gets_only_success(served_gateway: ServedGateway) -> None:
    statuses = [response.status_code for response in served_gateway.startup_burst]

    failures = [r.text for r in served_gateway.startup_burst if r.status_code != 201][:5]
    assert len(statuses) == BURST
    assert statuses == [201] * BURST, failures


@pytest.mark.parametrize("recipe", RECIPES)
def test_prediction_equals_the_golden_output(
    recipe: str, served_gateway: ServedGateway, reference_models: dict[str, str]
) -> None:
    tag = reference_models[recipe]
    golden = golden_examples(tag)

    response = httpx.post(
        f"{served_gateway.base_url}{PREDICTIONS}",
        json={"model": recipe, "inputs": golden["inputs"]},
        headers=NO_CACHE,
        timeout=30.0,
    )

    assert _probabilities(response) == golden["outputs"]
    labels = [p["outputs"]["label"] for p in response.json()["data"]["predictions"]]
    classes = output_classes(tag)
    assert labels == [classes[row.index(max(row))] for row in golden["outputs"]]


def test_concurrent_single_rows_each_get_their_own_golden_output(
    served_gateway: ServedGateway, reference_models: dict[str, str]
) -> None:
    tags = [reference_models[recipe] for recipe in RECIPES]
    expected: dict[str, dict[str, Any]] = {tag: golden_examples(tag) for tag in tags}
    bodies = prediction_bodies({tag: expected[tag]["inputs"] for tag in tags})

    responses = asyncio.run(post_concurrently(served_gateway.base_url, bodies))

    for body, response in zip(bodies, responses, strict=True):
        golden = expected[body["model"]]
        (output,) = _probabilities(response)
        assert output == golden["outputs"][golden["inputs"].index(body["inputs"][0])]


def test_concurrent_requests_are_batched(
    served_gateway: ServedGateway, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    bodies = prediction_bodies({tag: distinct_rows(tag, LOAD)})
    before = _metrics(served_gateway)

    responses = asyncio.run(post_concurrently(served_gateway.base_url, bodies))

    assert [r.status_code for r in responses] == [201] * LOAD
    after = _metrics(served_gateway)
    rows_before, calls_before = histogram_totals(
        before, "gateway_coalesced_batch_rows", framework="sklearn"
    )
    rows_after, calls_after = histogram_totals(
        after, "gateway_coalesced_batch_rows", framework="sklearn"
    )
    rows, calls = rows_after - rows_before, calls_after - calls_before
    adaptive = histogram_totals(
        after, "bentoml_service_adaptive_batch_size", service_name="sklearn_runner"
    )
    assert rows == LOAD
    assert calls < rows, f"{LOAD} requests took {calls} runner calls (BentoML batches: {adaptive})"
