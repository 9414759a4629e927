"""The Gateway service's other front doors, in-process through `Gateway.to_asgi()`: BentoML's
`predict` API and the Open Inference Protocol mounted beside /api/v1 (auth is off here; the
e2e tests call both with real clients and auth on)."""

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.utils.oip import feature_specs, inference_body, rest_outputs
from tests.utils.served_models import golden_examples, output_classes

pytestmark = pytest.mark.integration
RECIPES = ("fraud-xgb", "cancer-rf", "digits-mlp")


def _outputs(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [prediction["outputs"] for prediction in document["data"]["predictions"]]


def _envelope_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    document = response.json()
    assert set(document) == {"error"}
    assert set(document["error"]) == {"code", "message", "details"}
    assert document["error"]["code"] == code
    error: dict[str, Any] = document["error"]
    return error


@pytest.mark.parametrize("recipe", RECIPES)
def test_predict_api_answers_what_rest_answers(
    gateway_http: TestClient, reference_models: dict[str, str], recipe: str
) -> None:
    tag = reference_models[recipe]
    body = {"model": recipe, "inputs": golden_examples(tag)["inputs"]}

    rest = gateway_http.post("/api/v1/predictions", json=body)
    predict = gateway_http.post("/predict", json=body)

    assert rest.status_code == 201
    assert predict.status_code == 200, predict.text
    assert set(predict.json()) == {"data", "meta"}
    assert predict.json()["data"]["model"] == rest.json()["data"]["model"]
    assert _outputs(predict.json()) == _outputs(rest.json())
    assert predict.json()["meta"]["model_version"] == tag


def test_predict_api_reports_a_bad_row_as_rest_does(gateway_http: TestClient) -> None:
    body = {"model": "fraud-xgb", "inputs": [{"amount": "lots"}, 7]}

    rest = gateway_http.post("/api/v1/predictions", json=body)
    predict = gateway_http.post("/predict", json=body)

    error = _envelope_error(predict, 422, "validation_error")
    assert error == rest.json()["error"]
    problems = {(problem.get("row"), problem["code"]) for problem in error["details"]["errors"]}
    assert {(0, "wrong_type"), (0, "missing"), (1, "not_an_object")} <= problems


def test_predict_api_unknown_model_is_404(gateway_http: TestClient) -> None:
    response = gateway_http.post("/predict", json={"model": "nope", "inputs": [{}]})

    error = _envelope_error(response, 404, "model_not_found")
    assert "nope" in error["message"]


def test_predict_api_without_its_fields_is_a_400_envelope(gateway_http: TestClient) -> None:
    response = gateway_http.post("/predict", json={"model": "fraud-xgb"})

    _envelope_error(response, 400, "bad_request")


def test_the_protocol_is_mounted_beside_bentomls_routes(
    gateway_http: TestClient, reference_models: dict[str, str]
) -> None:
    tag = reference_models["digits-mlp"]
    rows = golden_examples(tag)["inputs"][:4]

    server = gateway_http.get("/v2")
    ready = gateway_http.get("/v2/health/ready")
    rest = gateway_http.post("/api/v1/predictions", json={"model": "digits-mlp", "inputs": rows})
    infer = gateway_http.post(
        "/v2/models/digits-mlp/infer", json=inference_body(rows, feature_specs(tag), "matrix")
    )
    unknown = gateway_http.get("/v2/models/nope")
    bentoml_own = gateway_http.get("/readyz")

    assert server.json()["name"] == "model-packaging"
    assert ready.status_code == 200
    assert infer.status_code == 200, infer.text
    labels, probabilities = rest_outputs(rest.json(), output_classes(tag))
    outputs = {output["name"]: output["data"] for output in infer.json()["outputs"]}
    assert (outputs["label"], outputs["probabilities"]) == (labels, probabilities)
    assert unknown.status_code == 404
    assert set(unknown.json()) == {"error"}
    assert bentoml_own.status_code == 200
