"""A credential dies with the account behind it, on the next request.

Each account change (deactivation, scopes removed, password changed, deletion) against each
credential (a JWT from the token route, an API key). The two-worker case is in
tests/e2e/test_revocation_server.py.
"""

from pathlib import Path
from typing import Any

import httpx
import pytest

from services.auth.settings import AuthSettings
from services.redis_client import RedisSettings
from tests.integration.auth.conftest import REDIS_URL
from tests.utils.accounts import PASSWORD, Account, new_account
from tests.utils.databases import PG_HOST, PG_PORT
from tests.utils.gateway import gateway_client
from tests.utils.redis_server import throwaway_redis
from tests.utils.tcp_proxy import cuttable_proxy

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
NEW_PASSWORD = "another long passphrase"
# What the admin does to the victim's account: a PATCH body, or None for DELETE.
CHANGES: dict[str, dict[str, Any] | None] = {
    "deactivated": {"is_active": False},
    "scopes removed": {"scopes": ["predictions:write"]},
    "password changed": {"password": NEW_PASSWORD},
    "deleted": None,
}


@pytest.fixture(params=["database", "redis"])
def epochs(request: pytest.FixtureRequest) -> RedisSettings:
    """Where the gateway reads credential epochs: the database (no Redis), or the Redis copy."""
    if request.param == "redis":
        return RedisSettings(url=REDIS_URL, cache_enabled=False)
    return RedisSettings(cache_enabled=False)


async def _change(client: httpx.AsyncClient, root: Account, victim: str, change: str) -> None:
    body = CHANGES[change]
    if body is None:
        response = await client.delete(f"/api/v1/users/{victim}", headers=root.headers)
        assert response.status_code == 204
    else:
        response = await client.patch(f"/api/v1/users/{victim}", headers=root.headers, json=body)
        assert response.status_code == 200, response.text


async def _as_admin(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> list[int]:
    """What an admin does: list users, create another admin. The statuses."""
    listed = await client.get("/api/v1/users", headers=headers)
    created = await client.post(
        "/api/v1/users",
        headers=headers,
        json={"username": name, "password": PASSWORD, "scopes": ["admin"]},
    )
    return [listed.status_code, created.status_code]


async def _password_token(client: httpx.AsyncClient, username: str, password: str) -> str:
    issued = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    assert issued.status_code == 200, issued.text
    token: str = issued.json()["access_token"]
    return token


@pytest.mark.parametrize("change", list(CHANGES))
async def test_a_token_issued_before_an_account_change_stops_on_the_next_request(
    change: str, auth_db: str, auth: AuthSettings, epochs: RedisSettings, unique: str
) -> None:
    root = await new_account(auth_db, auth, f"root-{unique}", ["admin"])
    victim = await new_account(auth_db, auth, f"victim-{unique}", ["admin"])
    async with gateway_client([], db_url=auth_db, auth=auth, redis=epochs) as (client, _):
        token = await _password_token(client, victim.username, PASSWORD)
        headers = {"Authorization": f"Bearer {token}"}
        before = await _as_admin(client, headers, f"made-before-{unique}")
        await _change(client, root, str(victim.id), change)
        after = await _as_admin(client, headers, f"made-after-{unique}")
        predict = await client.post(
            "/api/v1/predictions", headers=headers, json={"model": "x", "inputs": [{}]}
        )
        refused = await client.get("/api/v1/users", headers=headers)

    assert before == [200, 201]
    assert after == [401, 401]
    assert predict.status_code == 401
    assert refused.json()["error"]["message"] == "The credential is invalid, expired or revoked."
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


@pytest.mark.parametrize("change", list(CHANGES))
async def test_what_the_account_may_do_after_the_change_with_a_new_token(
    change: str, auth_db: str, auth: AuthSettings, epochs: RedisSettings, unique: str
) -> None:
    root = await new_account(auth_db, auth, f"root-{unique}", ["admin"])
    victim = await new_account(auth_db, auth, f"victim-{unique}", ["admin"])
    async with gateway_client([], db_url=auth_db, auth=auth, redis=epochs) as (client, _):
        await _change(client, root, str(victim.id), change)
        password = NEW_PASSWORD if change == "password changed" else PASSWORD
        issued = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": victim.username, "password": password},
        )
        if issued.status_code == 200:
            headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
            users = (await client.get("/api/v1/users", headers=headers)).status_code
        else:
            users = None

    expected = {
        "deactivated": (400, None),
        "deleted": (400, None),
        "scopes removed": (200, 403),
        "password changed": (200, 200),
    }
    assert (issued.status_code, users) == expected[change]


@pytest.mark.parametrize("change", list(CHANGES))
async def test_an_api_key_follows_its_owner(
    change: str, auth_db: str, auth: AuthSettings, epochs: RedisSettings, unique: str
) -> None:
    root = await new_account(auth_db, auth, f"root-{unique}", ["admin"])
    owner = await new_account(auth_db, auth, f"owner-{unique}", ["admin"])
    async with gateway_client([], db_url=auth_db, auth=auth, redis=epochs) as (client, _):
        created = await client.post(
            "/api/v1/api-keys", headers=root.headers, json={"name": "k", "user_id": str(owner.id)}
        )
        headers = {"X-API-Key": created.json()["data"]["key"]}
        before = await _as_admin(client, headers, f"key-before-{unique}")
        await _change(client, root, str(owner.id), change)
        after = await _as_admin(client, headers, f"key-after-{unique}")

    assert before == [200, 201]
    # A disabled or deleted owner's keys stop; a key never has more than its owner's scopes; a
    # password change leaves keys alone (they are separate credentials: revoke them by id).
    expected = {
        "deactivated": [401, 401],
        "deleted": [401, 401],
        "scopes removed": [403, 403],
        "password changed": [200, 201],
    }
    assert after == expected[change]


async def test_a_change_made_through_one_gateway_is_seen_by_another_at_once(
    auth_db: str, auth: AuthSettings, epochs: RedisSettings, unique: str
) -> None:
    root = await new_account(auth_db, auth, f"root-{unique}", ["admin"])
    victim = await new_account(auth_db, auth, f"victim-{unique}", ["admin"])
    async with (
        gateway_client([], db_url=auth_db, auth=auth, redis=epochs) as (first, _),
        gateway_client([], db_url=auth_db, auth=auth, redis=epochs) as (second, _),
    ):
        before = (await second.get("/api/v1/users", headers=victim.headers)).status_code
        await _change(first, root, str(victim.id), "scopes removed")
        after = (await second.get("/api/v1/users", headers=victim.headers)).status_code

    assert (before, after) == (200, 401)


async def test_a_database_outage_during_the_check_is_503_not_401_or_500(
    auth_db: str, auth: AuthSettings, unique: str
) -> None:
    account = await new_account(auth_db, auth, f"outage-{unique}", ["admin"])
    async with cuttable_proxy(PG_HOST, PG_PORT) as proxy:
        via_proxy = auth_db.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{proxy.port}")
        async with gateway_client([], db_url=via_proxy, auth=auth, db_connect_timeout_s=1.0) as (
            client,
            _,
        ):
            up = await client.get("/api/v1/users", headers=account.headers)
            proxy.cut()
            down = await client.get("/api/v1/users", headers=account.headers)
            proxy.restore()
            back = await client.get("/api/v1/users", headers=account.headers)

    assert up.status_code == 200
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "database_unavailable"
    assert down.headers["retry-after"] == "1"
    assert back.status_code == 200


async def test_redis_down_checks_fall_back_to_the_database_and_changes_wait_for_redis(
    tmp_path: Path, auth_db: str, auth: AuthSettings, unique: str
) -> None:
    root = await new_account(auth_db, auth, f"root-{unique}", ["admin"])
    victim = await new_account(auth_db, auth, f"victim-{unique}", ["admin"])
    with throwaway_redis(tmp_path) as redis_server:
        settings = RedisSettings(
            url=redis_server.url, cache_enabled=False, timeout_s=0.2, retry_after_failure_s=0.0
        )
        async with gateway_client([], db_url=auth_db, auth=auth, redis=settings) as (client, _):
            cached = (await client.get("/api/v1/users", headers=victim.headers)).status_code
            redis_server.stop()
            # Reads fall back to the database; a change that cannot drop the shared copy is
            # refused before anything is committed (another worker could keep using the copy).
            while_down = (await client.get("/api/v1/users", headers=victim.headers)).status_code
            refused = await client.patch(
                f"/api/v1/users/{victim.id}", headers=root.headers, json={"is_active": False}
            )
            redis_server.start()
            applied = await client.patch(
                f"/api/v1/users/{victim.id}", headers=root.headers, json={"is_active": False}
            )
            after = (await client.get("/api/v1/users", headers=victim.headers)).status_code

    assert (cached, while_down) == (200, 200)
    assert refused.status_code == 503
    assert (applied.status_code, after) == (200, 401)
