"""What the entry service declares to BentoML: which runner services start, which models the
gateway itself loads, and which routes skip BentoML's per-request tracing span."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.usefixtures("gateway_http")


def _gateway() -> Any:
    from services.service import Gateway

    return Gateway


def test_only_pytorch_keeps_a_runner_service_by_default(reference_models: dict[str, str]) -> None:
    gateway = _gateway()

    assert set(gateway.dependencies) == {"torch_runner"}
    declared = {
        name: str(model.tag)
        for name, model in vars(gateway.inner).items()
        if name.startswith("model_")
    }
    assert declared == {
        "model_sklearn_0": reference_models["cancer-rf"],
        "model_xgboost_0": reference_models["fraud-xgb"],
    }


def test_in_process_models_answer_through_the_gateway(
    gateway_http: TestClient, reference_models: dict[str, str]
) -> None:
    ready = gateway_http.get("/ready").json()["data"]["checks"]

    assert ready["runner:sklearn"] == "ok"
    assert ready["runner:xgboost"] == "ok"
    assert ready["runner:torch"] == "ok"


@pytest.mark.parametrize(
    ("url", "traced"),
    [
        ("http://h:3000/api/v1/predictions", False),
        ("http://h:3000/api/v1/predictions?page=2", False),
        ("http://h:3000/v2/models/cancer-rf/infer", False),
        ("http://h:3000/v2/models/cancer-rf/versions/abc/infer", False),
        ("http://h:3000/predict", False),
        ("http://h:3000/api/v1/predictions/0b5c/label", True),
        ("http://h:3000/api/v1/models", True),
        ("http://h:3000/v2/models/cancer-rf", True),
        ("http://h:3000/ready", True),
    ],
)
def test_prediction_routes_skip_the_tracing_span(url: str, traced: bool) -> None:
    from bentoml._internal.configuration.containers import BentoMLContainer

    _gateway().inject_config()  # what each gateway worker does before building its app

    assert BentoMLContainer.tracing_excluded_urls.get().url_disabled(url) is not traced
