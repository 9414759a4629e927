"""API first: the committed OpenAPI document is exactly what the running gateway serves."""

import difflib
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.utils.openapi import DOCUMENTS, OIP_OPENAPI_PATH, OPENAPI_PATH, REGENERATE, render

pytestmark = pytest.mark.integration
COMMITTED = [(path, served) for path, served, _ in DOCUMENTS]


@pytest.mark.parametrize(("committed_path", "served_path"), COMMITTED, ids=["api-v1", "oip-v2"])
def test_committed_openapi_document_matches_the_served_one(
    gateway_http: TestClient, committed_path: Path, served_path: str
) -> None:
    response = gateway_http.get(served_path)
    assert response.status_code == 200
    served = response.json()
    committed = json.loads(committed_path.read_text(encoding="utf-8"))

    if served != committed:
        diff = difflib.unified_diff(
            render(committed).splitlines(),
            render(served).splitlines(),
            fromfile=f"{committed_path.name} (committed)",
            tofile=f"{served_path} (served)",
            lineterm="",
        )
        pytest.fail(
            f"{committed_path} differs from the API the gateway serves"
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


def test_every_api_operation_documents_the_error_envelope() -> None:
    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            error = operation["responses"].get("422") or operation["responses"].get("404")
            assert error is not None, f"{method.upper()} {path} documents no error response"
            schema = error["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path)


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
