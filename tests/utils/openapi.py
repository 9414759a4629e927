"""Regenerate the committed /api/v1 OpenAPI document (`make openapi`).

    .venv/bin/python -m tests.utils.openapi

The document is the one the gateway serves at /api/v1/openapi.json: the app from
`create_app()` mounted where the Gateway service mounts it (so FastAPI adds the `servers`
entry), which needs neither the BentoML service nor any model. Review the diff, then commit it.
"""

import json
from pathlib import Path
from typing import Any

API_PREFIX = "/api/v1"
OPENAPI_PATH = Path(__file__).resolve().parents[2] / "services" / "gateway" / "openapi.json"
REGENERATE = "`make openapi` (or `.venv/bin/python -m tests.utils.openapi`)"


def served_document() -> dict[str, Any]:
    """The OpenAPI document as served under API_PREFIX by an app from `create_app()`."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from services.gateway.app import create_app

    outer = Starlette(routes=[Mount(API_PREFIX, app=create_app())])
    with TestClient(outer) as client:
        response = client.get(f"{API_PREFIX}/openapi.json")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    return document


def render(document: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, a trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    OPENAPI_PATH.write_text(render(served_document()), encoding="utf-8")
    print(f"wrote {OPENAPI_PATH}")


if __name__ == "__main__":
    main()
