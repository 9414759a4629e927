"""The built CPU bento, served by its tag (not the source tree), answers an authenticated call."""

from collections.abc import Iterator
from pathlib import Path

import bentoml
import httpx
import pytest

from tests.utils.accounts import create_admin_cli
from tests.utils.bentos import build_bento, checkout_repository
from tests.utils.databases import migrate, sqlite_url
from tests.utils.server import serve_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PASSWORD = "bento e2e admin password"


@pytest.fixture(scope="module")
def cpu_bento(
    reference_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    context = checkout_repository(tmp_path_factory.mktemp("checkout"))
    tag = build_bento(context, "cpu", reference_models)
    yield tag
    bentoml.bentos.delete(tag)


def test_built_cpu_bento_serves_an_authenticated_prediction(
    cpu_bento: str, reference_models: dict[str, str], tmp_path: Path
) -> None:
    database = sqlite_url(tmp_path / "bento.sqlite3")
    migrate(database)
    env = {
        "DB_URL": database,
        "AUTH_ENABLED": "true",
        "RATE_LIMIT_ENABLED": "true",
        "SERVING_ENVIRONMENT": "production",
    }
    created = create_admin_cli("release", PASSWORD, env)
    assert created.returncode == 0, created.stderr
    tag = reference_models["fraud-xgb"]
    golden = bentoml.models.get(tag).info.metadata["golden_examples"]

    with (
        serve_gateway(env=env, target=cpu_bento) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        anonymous = client.post("/api/v1/models")
        token = client.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "password",
                "username": "release",
                "password": PASSWORD,
            },
        ).json()["access_token"]
        response = client.post(
            "/api/v1/predictions",
            json={"model": "fraud-xgb", "inputs": golden["inputs"][:2]},
            headers={"Authorization": f"Bearer {token}", "Cache-Control": "no-cache"},
        )
        served_from = server.log_tail(400)

    assert anonymous.status_code == 401
    assert response.status_code == 201, response.text
    probabilities = [
        [p["outputs"]["probabilities"][str(c)] for c in (0, 1)]
        for p in response.json()["data"]["predictions"]
    ]
    assert probabilities == golden["outputs"][:2]
    assert response.json()["data"]["model"]["version"] == tag.split(":")[1]
    assert "Traceback" not in served_from
