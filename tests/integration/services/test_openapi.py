"""API first: the committed OpenAPI document is exactly what the running gateway serves."""

import difflib
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.utils.openapi import OPENAPI_PATH, REGENERATE, render

pytestmark = pytest.mark.integration


def test_committed_openapi_document_matches_the_served_one(gateway_http: TestClient) -> None:
    response = gateway_http.get("/api/v1/openapi.json")
    assert response.status_code == 200
    served = response.json()
    committed = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))

    if served != committed:
        diff = difflib.unified_diff(
            render(committed).splitlines(),
            render(served).splitlines(),
            fromfile=f"{OPENAPI_PATH.name} (committed)",
            tofile="/api/v1/openapi.json (served)",
            lineterm="",
        )
        pytest.fail(
            f"{OPENAPI_PATH} differs from the API the gateway serves"
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


def test_committed_openapi_document_is_in_canonical_form() -> None:
    text = OPENAPI_PATH.read_text(encoding="utf-8")

    assert text == render(json.loads(text)), (
        f"{OPENAPI_PATH} is not sorted and indented as generated; run {REGENERATE}"
    )


def test_every_api_operation_documents_the_error_envelope() -> None:
    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            error = operation["responses"].get("422") or operation["responses"].get("404")
            assert error is not None, f"{method.upper()} {path} documents no error response"
            schema = error["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path)
