"""Regenerate the committed OpenAPI documents (`make openapi`): /api/v1 and the Open Inference
Protocol's /v2.

    .venv/bin/python -m tests.utils.openapi

Each is the document the gateway serves: /api/v1/openapi.json from the app of `create_app()`
mounted where the Gateway service mounts it (so FastAPI adds the `servers` entry), and
/v2/openapi.json from `create_oip_app()` (mounted at the root: its routes carry /v2). Neither
needs the BentoML service or any model. Review the diff, then commit it.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

API_PREFIX = "/api/v1"
GATEWAY = Path(__file__).resolve().parents[2] / "services" / "gateway"
OPENAPI_PATH = GATEWAY / "openapi.json"
OIP_OPENAPI_PATH = GATEWAY / "oip" / "openapi.json"
REGENERATE = "`make openapi` (or `.venv/bin/python -m tests.utils.openapi`)"


def served_document() -> dict[str, Any]:
    """The OpenAPI document as served under API_PREFIX by an app from `create_app()`."""
    from services.gateway.app import create_app

    return _served(create_app, API_PREFIX, f"{API_PREFIX}/openapi.json")


def served_oip_document() -> dict[str, Any]:
    """The /v2 OpenAPI document as served by an app from `create_oip_app()`."""
    from services.gateway.oip.app import create_oip_app

    return _served(create_oip_app, "", "/v2/openapi.json")


# (committed file, served path, how to build it): what the drift tests compare.
DOCUMENTS: list[tuple[Path, str, Callable[[], dict[str, Any]]]] = [
    (OPENAPI_PATH, f"{API_PREFIX}/openapi.json", served_document),
    (OIP_OPENAPI_PATH, "/v2/openapi.json", served_oip_document),
]


def _served(factory: Callable[[], Any], mount: str, path: str) -> dict[str, Any]:
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    outer = Starlette(routes=[Mount(mount, app=factory())])
    with TestClient(outer) as client:
        response = client.get(path)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    return document


def render(document: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, a trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    for committed, _, build in DOCUMENTS:
        committed.write_text(render(build()), encoding="utf-8")
        print(f"wrote {committed}")


if __name__ == "__main__":
    main()
