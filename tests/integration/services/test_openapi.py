"""API first: the committed OpenAPI documents are exactly what the running gateway serves: /api/v1
(but for `PredictionCreate`, which a gateway refines into one request shape per served model) and
the Open Inference Protocol's /v2."""

import difflib
import json
from pathlib import Path
from typing import Any

import bentoml
import jsonschema
import pytest
from starlette.testclient import TestClient

from services.gateway.openapi import with_served_models
from tests.utils.openapi import (
    OIP_OPENAPI_PATH,
    OPENAPI_PATH,
    REGENERATE,
    render,
    served_document,
    served_oip_document,
)

pytestmark = pytest.mark.integration


def _committed() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    return document


def _served(gateway_http: TestClient) -> dict[str, Any]:
    response = gateway_http.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_committed_openapi_document_matches_the_api_contract() -> None:
    """The committed document is what `make openapi` writes from the routes and schemas."""
    _assert_same(_committed(), served_document())


def test_the_served_document_is_the_committed_one_refined_for_the_served_models(
    gateway_http: TestClient,
) -> None:
    from services.service import RUNTIME

    runtime = RUNTIME.runtime
    assert runtime is not None
    committed, served = _committed(), _served(gateway_http)

    _assert_same(with_served_models(committed, runtime.catalog.all(), runtime.settings), served)
    # The refinement touches PredictionCreate only: everything else is served as committed.
    refined = {name for name in served["components"]["schemas"] if name.startswith("Prediction")}
    unchanged = set(served["components"]["schemas"]) - refined
    assert {k: v for k, v in served.items() if k != "components"} == {
        k: v for k, v in committed.items() if k != "components"
    }
    assert {n: served["components"]["schemas"][n] for n in unchanged} == {
        n: committed["components"]["schemas"][n] for n in unchanged
    }


def test_each_served_model_has_its_request_shape(
    gateway_http: TestClient, reference_models: dict[str, str]
) -> None:
    served = _served(gateway_http)
    schemas = served["components"]["schemas"]
    variants = [v["$ref"].rsplit("/", 1)[1] for v in schemas["PredictionCreate"]["oneOf"]]
    resolver = {"components": served["components"], **schemas["PredictionCreate"]}

    assert sorted(variants) == sorted(f"PredictionCreate.{name}" for name in reference_models)
    for name, tag in reference_models.items():
        golden = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"]
        body = {"model": name, "inputs": golden[:3]}
        # A golden row fits its own model's shape, and only that one (oneOf).
        jsonschema.validate(body, resolver)
        jsonschema.validate({**body, "model": tag}, resolver)
        for other in reference_models:
            if other != name:
                with pytest.raises(jsonschema.ValidationError):
                    jsonschema.validate({**body, "model": other}, resolver)
        row = schemas[f"PredictionCreate.{name}"]["properties"]["inputs"]["items"]
        feature = next(n for n, s in row["properties"].items() if "maximum" in s)
        too_big = {**golden[0], feature: row["properties"][feature]["maximum"] + 1}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"model": name, "inputs": [too_big]}, resolver)


def _assert_same(
    committed: dict[str, Any], served: dict[str, Any], path: Path = OPENAPI_PATH
) -> None:
    if served != committed:
        diff = difflib.unified_diff(
            render(committed).splitlines(),
            render(served).splitlines(),
            fromfile=f"{path.name} (committed)",
            tofile="served",
            lineterm="",
        )
        pytest.fail(
            f"{path} differs from the API the gateway serves"
            f" ({_changed_operations(committed, served)}). If the API change is intended,"
            f" regenerate the document with {REGENERATE}, review the diff and commit it."
            " First differences:\n" + "\n".join(list(diff)[:60]),
            pytrace=False,
        )


def _operations(document: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{method.upper()} {path}": operation
        for path, operations in document.get("paths", {}).items()
        for method, operation in operations.items()
    }


def _changed_operations(committed: dict[str, Any], served: dict[str, Any]) -> str:
    """Which operations were added, removed or changed, in one line."""
    old, new = _operations(committed), _operations(served)
    parts = [
        f"{label}: {', '.join(sorted(names))}"
        for label, names in (
            ("added", new.keys() - old.keys()),
            ("removed", old.keys() - new.keys()),
            ("changed", {k for k in old.keys() & new.keys() if old[k] != new[k]}),
        )
        if names
    ]
    return "; ".join(parts) or "operations unchanged; schemas or metadata differ"


@pytest.mark.parametrize("committed_path", [OPENAPI_PATH, OIP_OPENAPI_PATH], ids=["v1", "v2"])
def test_committed_openapi_document_is_in_canonical_form(committed_path: Path) -> None:
    text = committed_path.read_text(encoding="utf-8")

    assert text == render(json.loads(text)), (
        f"{committed_path} is not sorted and indented as generated; run {REGENERATE}"
    )


def test_committed_protocol_document_matches_the_contract_and_the_served_one(
    gateway_http: TestClient,
) -> None:
    committed = json.loads(OIP_OPENAPI_PATH.read_text(encoding="utf-8"))
    response = gateway_http.get("/v2/openapi.json")
    assert response.status_code == 200

    _assert_same(committed, served_oip_document(), OIP_OPENAPI_PATH)
    _assert_same(committed, response.json(), OIP_OPENAPI_PATH)


def test_every_api_operation_documents_its_errors_in_the_envelope() -> None:
    """Every error is the envelope, but the token endpoint's own 400 (RFC 6749 section 5.2)."""
    document = _committed()

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            errors = {s: r for s, r in operation["responses"].items() if not s.startswith("2")}
            assert {"400", "500", "503"} <= set(errors), name
            for status, response in errors.items():
                schema = response["content"]["application/json"]["schema"]
                expected = (
                    "OAuthErrorResponse"
                    if (name, status) == ("POST /auth/token", "400")
                    else "ErrorEnvelope"
                )
                assert schema == {"$ref": f"#/components/schemas/{expected}"}, (name, status)


def test_statuses_only_some_routes_answer_are_documented_where_they_happen() -> None:
    document = _committed()
    operations = {
        f"{method.upper()} {path}": operation
        for path, ops in document["paths"].items()
        for method, operation in ops.items()
    }

    assert "409" in operations["POST /users"]["responses"]  # a taken username
    for name, operation in operations.items():
        takes_json = "application/json" in operation.get("requestBody", {}).get("content", {})
        # A JSON body in another content type is a 415 saying what to send.
        assert ("415" in operation["responses"]) == takes_json, name
    token = operations["POST /auth/token"]["responses"]
    assert "422" not in token  # its request errors are RFC 6749's 400s


def test_every_protocol_operation_documents_its_errors_in_the_protocol_shape() -> None:
    document = json.loads(OIP_OPENAPI_PATH.read_text(encoding="utf-8"))
    protocol_error = {"$ref": "#/components/schemas/ProtocolError"}

    open_paths = {"/v2", "/v2/health/live"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {k: v for k, v in operation["responses"].items() if k.startswith(("4", "5"))}
            assert errors or path in open_paths, f"{method.upper()} {path} documents no error"
            for status, answer in errors.items():
                schema = answer["content"]["application/json"]["schema"]
                assert schema == protocol_error, (method, path, status)
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InferenceRequest"
    }
    assert "InferenceRequest" in document["components"]["schemas"]
