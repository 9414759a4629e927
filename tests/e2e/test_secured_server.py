"""The real server with auth, Redis limits, PostgreSQL and two gateway worker processes."""

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import bentoml
import httpx
import pytest

from tests.utils.accounts import create_admin_cli
from tests.utils.databases import migrated_postgres
from tests.utils.server import RunningServer, serve_gateway

pytestmark = pytest.mark.e2e
PASSWORD = "e2e admin password 42"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with migrated_postgres() as url:
        yield url


def _env(database: str, tag: str) -> dict[str, str]:
    return {
        "DB_URL": database,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "AUTH_ENABLED": "true",
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_INFERENCE_RATE": "0.05",
        "RATE_LIMIT_INFERENCE_BURST": "6",
        "SERVING_GATEWAY_WORKERS": "2",
        "SERVING_MODELS": tag,
    }


def _cli(database: str, username: str) -> subprocess.CompletedProcess[str]:
    return create_admin_cli(username, PASSWORD, {"DB_URL": database})


def _body(tag: str) -> dict[str, Any]:
    row = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"][0]
    return {"model": tag.split(":")[0], "inputs": [row]}


def _fresh(server: RunningServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request on a new connection, so successive requests spread over the workers."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        return client.request(method, path, **kwargs)


def _workers_seen(server: RunningServer) -> set[int]:
    """Process ids of the gateway workers that answered predictions (from our access log)."""
    pids = set()
    for line in server.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"logger": "services.access"' in line:
            entry = json.loads(line)
            if entry["endpoint"] == "/api/v1/predictions":
                pids.add(entry["pid"])
    return pids


def test_secured_server_end_to_end(database: str, reference_models: dict[str, str]) -> None:
    tag = reference_models["cancer-rf"]
    admin = f"admin-{uuid.uuid4().hex[:8]}"
    first, second = _cli(database, admin), _cli(database, f"{admin}-2")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 3
    assert "admin already exists" in second.stderr

    with serve_gateway(env=_env(database, tag)) as server:
        anonymous = _fresh(server, "POST", "/api/v1/predictions", json=_body(tag))
        token = _fresh(
            server,
            "POST",
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": admin, "password": PASSWORD},
        ).json()
        as_admin = {"Authorization": f"Bearer {token['access_token']}"}
        key_response = _fresh(
            server, "POST", "/api/v1/api-keys", headers=as_admin, json={"name": "e2e"}
        )
        assert key_response.status_code == 201, (key_response.text, token)
        key = key_response.json()["data"]
        with_key = {"X-API-Key": key["key"]}
        created = _fresh(server, "POST", "/api/v1/predictions", json=_body(tag), headers=as_admin)
        first_id = created.json()["data"]["predictions"][0]["id"]
        # The key acts for the same principal, so it shares the admin's inference limit.
        statuses = [
            _fresh(
                server, "POST", "/api/v1/predictions", json=_body(tag), headers=with_key
            ).status_code
            for _ in range(12)
        ]
        revoked = _fresh(server, "DELETE", f"/api/v1/api-keys/{key['id']}", headers=as_admin)
        after_revoke = [
            _fresh(
                server, "POST", "/api/v1/predictions", json=_body(tag), headers=with_key
            ).status_code
            for _ in range(8)
        ]
        workers = _workers_seen(server)

    assert anonymous.status_code == 401
    # One shared limit across both worker processes: a burst of 6 (one used above), then 429s.
    assert statuses.count(201) in (5, 6)
    assert 429 in statuses
    assert created.status_code == 201
    assert revoked.status_code == 204
    assert set(after_revoke) == {401}
    assert len(workers) == 2, "both gateway workers must have served predictions"

    with serve_gateway(env=_env(database, tag)) as server:
        token = _fresh(
            server,
            "POST",
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": admin, "password": PASSWORD},
        ).json()
        survived = _fresh(
            server,
            "GET",
            f"/api/v1/predictions/{first_id}",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )

    assert survived.status_code == 200
    assert survived.json()["data"]["principal"] == admin
