"""The protocol's health routes: 200 with no body, and not ready as a 400 `{"error"}`, as the
protocol (and Triton, MLServer) say; a fake runtime stands in for the gateway's."""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from services.gateway.middleware import GatewayMiddleware
from services.gateway.oip.app import create_oip_app
from tests.utils.asgi import request

Readiness = Callable[[], Awaitable[tuple[bool, dict[str, str]]]]


class _Runtime:
    def __init__(self, readiness: Readiness) -> None:
        self.readiness = readiness


def _served(runtime: _Runtime | None) -> GatewayMiddleware:
    return GatewayMiddleware(create_oip_app(), max_body_bytes=4096, runtime=lambda: runtime)


async def _ready() -> tuple[bool, dict[str, str]]:
    return True, {"runner:xgboost": "ok"}


async def _runner_down() -> tuple[bool, dict[str, str]]:
    return False, {"runner:xgboost": "unavailable", "database": "ok"}


def test_live_and_ready_are_200_with_no_body() -> None:
    app = _served(_Runtime(_ready))

    live, ready = request(app, "/v2/health/live"), request(app, "/v2/health/ready")

    assert (live.status, live.body, ready.status, ready.body) == (200, b"", 200, b"")


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        (None, "The server is starting."),
        (_Runtime(_runner_down), "The server is not ready: runner:xgboost."),
    ],
    ids=["starting", "runner-down"],
)
def test_not_ready_is_400_in_the_protocol_shape(runtime: Any, message: str) -> None:
    response = request(_served(runtime), "/v2/health/ready")

    assert response.status == 400
    assert response.json() == {"error": message}


def test_server_metadata_needs_no_runtime() -> None:
    response = request(_served(None), "/v2")

    assert response.status == 200
    assert response.json()["extensions"] == ["binary_tensor_data"]
