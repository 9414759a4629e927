"""The real Gateway app over HTTP, in-process: routes, envelopes, errors, probes.

Runner services are called locally (no batching here; tests/e2e covers a real server).
"""

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.utils.load import NO_CACHE
from tests.utils.served_models import feature_names, golden_examples, output_classes

pytestmark = pytest.mark.integration

RECIPES = ("fraud-xgb", "cancer-rf", "digits-mlp")
PREDICTIONS = "/api/v1/predictions"


def _fraud_row(**overrides: Any) -> dict[str, Any]:
    """A valid fraud-xgb row, inside every training range."""
    row: dict[str, Any] = {
        "amount": 42.5,
        "hour": 14,
        "merchant_category": "grocery",
        "distance_from_home_km": 3.2,
        "txn_count_1h": 1,
        "card_present": True,
        "account_age_days": 900,
        "is_foreign": False,
    }
    row.update(overrides)
    return row


def _predict(client: TestClient, model: str, inputs: list[Any], **kwargs: Any) -> Any:
    return client.post(PREDICTIONS, json={"model": model, "inputs": inputs}, **kwargs)


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The error of an envelope response, after checking its status, type and shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert set(document) == {"error"}
    assert set(document["error"]) == {"code", "message", "details"}
    assert document["error"]["code"] == code
    error: dict[str, Any] = document["error"]
    return error


def _keys(document: Any) -> Iterator[str]:
    """Every object key anywhere in a JSON document."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield key
            yield from _keys(value)
    elif isinstance(document, list):
        for value in document:
            yield from _keys(value)


# predictions


def test_prediction_is_created_with_the_envelope(
    gateway_http: TestClient, reference_models: dict[str, str]
) -> None:
    response = _predict(gateway_http, "fraud-xgb", [_fraud_row()])

    assert response.status_code == 201
    document = response.json()
    assert set(document) == {"data", "meta"}
    assert document["data"]["model"] == {"name": "fraud-xgb", "version": "test-seed42"}
    (prediction,) = document["data"]["predictions"]
    assert set(prediction) == {"id", "outputs"}
    assert uuid.UUID(prediction["id"])
    outputs = prediction["outputs"]
    assert set(outputs) == {"label", "score", "probabilities", "out_of_range"}
    assert outputs["label"] in (0, 1)
    assert set(outputs["probabilities"]) == {"0", "1"}
    assert outputs["score"] == max(outputs["probabilities"].values())
    assert outputs["out_of_range"] == []
    meta = document["meta"]
    assert meta["model_version"] == reference_models["fraud-xgb"]
    assert meta["request_id"] == response.headers["x-request-id"]
    assert datetime.fromisoformat(meta["timestamp"]).utcoffset() is not None


@pytest.mark.parametrize("recipe", RECIPES)
def test_predictions_equal_the_stored_golden_outputs(
    recipe: str, gateway_http: TestClient, reference_models: dict[str, str]
) -> None:
    tag = reference_models[recipe]
    golden = golden_examples(tag)
    classes = output_classes(tag)

    response = _predict(gateway_http, recipe, golden["inputs"], headers=NO_CACHE)

    assert response.status_code == 201, response.text
    predictions = response.json()["data"]["predictions"]
    assert len(predictions) == len(golden["outputs"])
    for prediction, expected in zip(predictions, golden["outputs"], strict=True):
        outputs = prediction["outputs"]
        assert list(outputs["probabilities"]) == [str(label) for label in classes]
        assert list(outputs["probabilities"].values()) == expected
        assert outputs["score"] == max(expected)
        assert outputs["label"] == classes[expected.index(max(expected))]


def test_each_prediction_gets_its_own_id(gateway_http: TestClient) -> None:
    response = _predict(gateway_http, "fraud-xgb", [_fraud_row(), _fraud_row(amount=7.5)])

    ids = [prediction["id"] for prediction in response.json()["data"]["predictions"]]
    assert len(set(ids)) == 2


def test_a_model_can_be_named_with_its_version(
    gateway_http: TestClient, reference_models: dict[str, str]
) -> None:
    response = _predict(gateway_http, reference_models["fraud-xgb"], [_fraud_row()])

    assert response.status_code == 201
    assert response.json()["data"]["model"]["version"] == "test-seed42"


@pytest.mark.parametrize("model", ["no-such-model", "fraud-xgb:no-such-version"])
def test_an_unknown_model_or_version_is_404(
    model: str, gateway_http: TestClient, reference_models: dict[str, str]
) -> None:
    error = _error(_predict(gateway_http, model, [_fraud_row()]), 404, "model_not_found")

    assert model in error["message"]
    assert error["details"]["served"] == sorted(reference_models.values())


# validation and malformed requests


def test_invalid_rows_are_422_with_one_detail_per_row_and_field(gateway_http: TestClient) -> None:
    inputs = [
        _fraud_row(amount="lots"),
        _fraud_row(),
        _fraud_row(merchant_category="casino", hour=3.5),
    ]

    error = _error(_predict(gateway_http, "fraud-xgb", inputs), 422, "validation_error")

    problems = {(d["row"], d["field"], d["code"]) for d in error["details"]["errors"]}
    assert problems == {
        (0, "amount", "wrong_type"),
        (2, "merchant_category", "unknown_category"),
        (2, "hour", "wrong_type"),
    }
    assert len(error["details"]["errors"]) == 3


def test_a_value_outside_the_training_range_is_422(gateway_http: TestClient) -> None:
    error = _error(
        _predict(gateway_http, "fraud-xgb", [_fraud_row(amount=1e9)]), 422, "validation_error"
    )

    assert error["details"]["errors"][0]["code"] == "out_of_range"
    assert error["details"]["errors"][0]["field"] == "amount"


def test_too_many_rows_is_422(gateway_http: TestClient) -> None:
    error = _error(
        _predict(gateway_http, "fraud-xgb", [_fraud_row()] * 257), 422, "validation_error"
    )

    assert error["details"]["errors"] == [
        {"code": "too_many_rows", "message": "257 rows; at most 256 per request"}
    ]


def test_empty_inputs_are_422(gateway_http: TestClient) -> None:
    error = _error(_predict(gateway_http, "fraud-xgb", []), 422, "validation_error")

    assert error["details"]["errors"][0]["code"] == "empty"


def test_a_request_body_missing_a_field_is_422_naming_it(gateway_http: TestClient) -> None:
    response = gateway_http.post(PREDICTIONS, json={"inputs": [_fraud_row()]})

    error = _error(response, 422, "validation_error")
    assert [detail["field"] for detail in error["details"]["errors"]] == ["body.model"]


def test_unknown_request_fields_are_422(gateway_http: TestClient) -> None:
    response = gateway_http.post(
        PREDICTIONS, json={"model": "fraud-xgb", "inputs": [_fraud_row()], "debug": True}
    )

    error = _error(response, 422, "validation_error")
    assert [detail["field"] for detail in error["details"]["errors"]] == ["body.debug"]


def test_malformed_json_is_400(gateway_http: TestClient) -> None:
    response = gateway_http.post(
        PREDICTIONS,
        content=b'{"model": "fraud-xgb", ',
        headers={"content-type": "application/json"},
    )

    error = _error(response, 400, "bad_request")
    assert error["message"] == "The request body is not valid JSON."


@pytest.mark.parametrize("body", [[1, 2], "fraud-xgb", 3], ids=["array", "string", "number"])
def test_a_body_that_is_not_an_object_is_400(body: Any, gateway_http: TestClient) -> None:
    response = gateway_http.post(PREDICTIONS, json=body)

    error = _error(response, 400, "bad_request")
    assert error["message"] == "The request body must be a JSON object."


def test_a_declared_body_over_the_limit_is_413(gateway_http: TestClient) -> None:
    body = json.dumps({"model": "fraud-xgb", "inputs": [], "pad": "x" * 1_100_000}).encode()

    response = gateway_http.post(
        PREDICTIONS, content=body, headers={"content-type": "application/json"}
    )

    _error(response, 413, "payload_too_large")


def test_a_streamed_body_over_the_limit_is_413(gateway_http: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "fraud-xgb", "inputs": [], "pad": "'
        for _ in range(1_100):
            yield b"x" * 1_024
        yield b'"}'

    response = gateway_http.post(
        PREDICTIONS, content=chunks(), headers={"content-type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    _error(response, 413, "payload_too_large")


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/nothing-here"])
def test_an_unknown_route_is_404(path: str, gateway_http: TestClient) -> None:
    _error(gateway_http.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", PREDICTIONS), ("DELETE", "/api/v1/models"), ("POST", "/api/v1/models/fraud-xgb")],
)
def test_a_wrong_method_is_405(method: str, path: str, gateway_http: TestClient) -> None:
    _error(gateway_http.request(method, path, json={}), 405, "method_not_allowed")


# models


def test_models_are_listed_by_name_with_page_meta(gateway_http: TestClient) -> None:
    response = gateway_http.get("/api/v1/models")

    assert response.status_code == 200
    document = response.json()
    assert [model["name"] for model in document["data"]] == sorted(RECIPES)
    assert {k: document["meta"][k] for k in ("total", "pages", "page", "limit")} == {
        "total": 3,
        "pages": 1,
        "page": 1,
        "limit": 50,
    }


def test_models_are_paginated_by_page_and_limit(gateway_http: TestClient) -> None:
    first = gateway_http.get("/api/v1/models", params={"page": 1, "limit": 2}).json()
    second = gateway_http.get("/api/v1/models", params={"page": 2, "limit": 2}).json()

    assert [m["name"] for m in first["data"]] == ["cancer-rf", "digits-mlp"]
    assert [m["name"] for m in second["data"]] == ["fraud-xgb"]
    assert (second["meta"]["total"], second["meta"]["pages"], second["meta"]["page"]) == (3, 2, 2)


def test_a_page_past_the_end_is_empty(gateway_http: TestClient) -> None:
    document = gateway_http.get("/api/v1/models", params={"page": 3, "limit": 2}).json()

    assert document["data"] == []
    assert document["meta"]["total"] == 3


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 201}, {"page": 0}, {"page": "one"}], ids=str
)
def test_bad_paging_parameters_are_400(params: dict[str, Any], gateway_http: TestClient) -> None:
    _error(gateway_http.get("/api/v1/models", params=params), 400, "bad_request")


@pytest.mark.parametrize("recipe", RECIPES)
def test_one_model_exposes_its_schemas_and_metrics(
    recipe: str, gateway_http: TestClient, reference_models: dict[str, str]
) -> None:
    response = gateway_http.get(f"/api/v1/models/{recipe}")

    assert response.status_code == 200
    model = response.json()["data"]
    assert model["tag"] == reference_models[recipe]
    assert model["output_schema"]["classes"] == output_classes(reference_models[recipe])
    assert [f["name"] for f in model["feature_schema"]["features"]] == feature_names(
        reference_models[recipe]
    )
    assert model["metrics"]
    assert all(isinstance(value, float) for value in model["metrics"].values())


@pytest.mark.parametrize("path", ["/api/v1/models", *(f"/api/v1/models/{r}" for r in RECIPES)])
def test_models_never_expose_artifact_internals(path: str, gateway_http: TestClient) -> None:
    document = gateway_http.get(path).json()

    hidden = {"artifact_files", "golden_examples", "hyperparameters", "model_file", "git_commit"}
    assert hidden.isdisjoint(_keys(document))


def test_one_model_can_be_named_with_its_version(
    gateway_http: TestClient, reference_models: dict[str, str]
) -> None:
    response = gateway_http.get(f"/api/v1/models/{reference_models['cancer-rf']}")

    assert response.status_code == 200
    assert response.json()["data"]["version"] == "test-seed42"


@pytest.mark.parametrize("name", ["no-such-model", "cancer-rf:no-such-version"])
def test_an_unknown_model_is_404(name: str, gateway_http: TestClient) -> None:
    _error(gateway_http.get(f"/api/v1/models/{name}"), 404, "model_not_found")


# probes and request ids


def test_health_is_alive(gateway_http: TestClient) -> None:
    response = gateway_http.get("/health")

    assert response.status_code == 200
    assert response.json()["data"] == {"status": "alive"}


def test_ready_reports_every_runner_ready(gateway_http: TestClient) -> None:
    response = gateway_http.get("/ready")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["ready"] is True
    runner_checks = {name: v for name, v in data["checks"].items() if name.startswith("runner:")}
    assert runner_checks == {"runner:sklearn": "ok", "runner:torch": "ok", "runner:xgboost": "ok"}


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_bentoml_probes_still_answer(path: str, gateway_http: TestClient) -> None:
    assert gateway_http.get(path).status_code == 200


def test_a_client_request_id_is_echoed(gateway_http: TestClient) -> None:
    response = _predict(
        gateway_http, "fraud-xgb", [_fraud_row()], headers={"X-Request-ID": "client-abc-0001"}
    )

    assert response.headers["x-request-id"] == "client-abc-0001"
    assert response.json()["meta"]["request_id"] == "client-abc-0001"


def test_an_error_echoes_the_request_id(gateway_http: TestClient) -> None:
    response = gateway_http.get("/api/v1/models/nope", headers={"X-Request-ID": "client-abc-0002"})

    assert response.status_code == 404
    assert response.headers["x-request-id"] == "client-abc-0002"
