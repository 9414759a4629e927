"""Revocation on a real server with two gateway worker processes, PostgreSQL and Redis: an
account change made through one worker is seen by both on the very next request."""

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.utils.accounts import create_admin_cli
from tests.utils.databases import migrated_postgres
from tests.utils.server import RunningServer, serve_gateway

pytestmark = pytest.mark.e2e
PASSWORD = "e2e admin password 42"
# The account change, as a PATCH body (None: DELETE), and what the victim's API key may do
# afterwards (GET /users).
CHANGES: dict[str, tuple[dict[str, Any] | None, int]] = {
    "deactivated": ({"is_active": False}, 401),
    "scopes removed": ({"scopes": ["predictions:write"]}, 403),
    "password changed": ({"password": "a brand new passphrase"}, 200),
    "deleted": (None, 401),
}
ROUNDS = 16  # requests per credential and moment, each on a new connection


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with migrated_postgres() as url:
        yield url


def _fresh(server: RunningServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request on a new connection, so successive requests spread over the workers."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        return client.request(method, path, **kwargs)


def _answers(server: RunningServer, headers: dict[str, str], marker: str) -> list[tuple[int, int]]:
    """(status, worker pid) of ROUNDS GET /users with `headers`, each on a new connection."""
    request_ids = [f"{marker}-{i:02d}-{uuid.uuid4().hex[:8]}" for i in range(ROUNDS)]
    statuses = [
        _fresh(server, "GET", "/api/v1/users", headers={**headers, "X-Request-ID": rid}).status_code
        for rid in request_ids
    ]
    pids = _pids_by_request_id(server, request_ids)
    return [(status, pids[rid]) for status, rid in zip(statuses, request_ids, strict=True)]


def _pids_by_request_id(server: RunningServer, wanted: list[str]) -> dict[str, int]:
    """Which gateway worker answered each request (from our JSON access log, which a worker
    may write a moment after its response)."""
    deadline = time.monotonic() + 10
    while True:
        found = {}
        for line in server.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"logger": "services.access"' in line:
                entry = json.loads(line)
                found[entry["request_id"]] = entry["pid"]
        if set(wanted) <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_account_changes_reach_both_workers_on_the_next_request(
    database: str, reference_models: dict[str, str]
) -> None:
    admin = f"root-{uuid.uuid4().hex[:8]}"
    created = create_admin_cli(admin, PASSWORD, {"DB_URL": database})
    assert created.returncode == 0, created.stderr
    env = {
        "DB_URL": database,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "AUTH_ENABLED": "true",
        "RATE_LIMIT_ENABLED": "false",
        "SERVING_GATEWAY_WORKERS": "2",
        "SERVING_MODELS": reference_models["cancer-rf"],
    }
    results: dict[str, dict[str, list[tuple[int, int]]]] = {}
    with serve_gateway(env=env) as server:
        root = _token(server, admin, PASSWORD)
        for change, (body, _) in CHANGES.items():
            victim = f"victim-{uuid.uuid4().hex[:8]}"
            made = _fresh(
                server,
                "POST",
                "/api/v1/users",
                headers=root,
                json={"username": victim, "password": PASSWORD, "scopes": ["admin"]},
            )
            assert made.status_code == 201, made.text
            victim_id = made.json()["data"]["id"]
            credentials = {
                "jwt": _token(server, victim, PASSWORD),
                "api key": {"X-API-Key": _key(server, root, victim_id)},
            }
            seen: dict[str, list[tuple[int, int]]] = {}
            for name, headers in credentials.items():
                seen[f"{name} before"] = _answers(server, headers, "before")
            if body is None:
                answer = _fresh(server, "DELETE", f"/api/v1/users/{victim_id}", headers=root)
            else:
                answer = _fresh(
                    server, "PATCH", f"/api/v1/users/{victim_id}", headers=root, json=body
                )
            assert answer.status_code in (200, 204), answer.text
            for name, headers in credentials.items():
                seen[f"{name} after"] = _answers(server, headers, "after")
            results[change] = seen

    for change, (_, key_after) in CHANGES.items():
        seen = results[change]
        for moment, answers in seen.items():
            # Both workers answered at every moment, so each saw the change on its own.
            assert len({pid for _, pid in answers}) == 2, (change, moment)
        assert {status for status, _ in seen["jwt before"]} == {200}, change
        assert {status for status, _ in seen["api key before"]} == {200}, change
        assert {status for status, _ in seen["jwt after"]} == {401}, change
        assert {status for status, _ in seen["api key after"]} == {key_after}, change


def _token(server: RunningServer, username: str, password: str) -> dict[str, str]:
    issued = _fresh(
        server,
        "POST",
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


def _key(server: RunningServer, root: dict[str, str], owner: str) -> str:
    created = _fresh(
        server, "POST", "/api/v1/api-keys", headers=root, json={"name": "e2e", "user_id": owner}
    )
    assert created.status_code == 201, created.text
    key: str = created.json()["data"]["key"]
    return key
