"""The real Gateway service in-process, built once for the whole session."""

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.utils.service_app import gateway_test_client


@pytest.fixture(scope="session")
def gateway_http(reference_models: dict[str, str]) -> Iterator[TestClient]:
    """An HTTP client on `Gateway.to_asgi()` serving the reference models."""
    with gateway_test_client(sorted(reference_models.values())) as client:
        yield client
