"""Every /api/v1 route needs a valid credential; every way one can be wrong is a 401."""

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import bentoml
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import async_sessionmaker

from db.engine import create_engine, session_factory
from db.settings import DatabaseSettings
from services.auth.accounts import bootstrap_admin, create_user
from services.auth.settings import AuthSettings
from services.errors import Conflict
from tests.integration.auth.conftest import SECRET
from tests.utils.accounts import new_account
from tests.utils.gateway import gateway_client

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
PASSWORD = "correct horse battery staple"  # the same as tests.utils.accounts.PASSWORD


def _claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {
        "sub": "someone",
        "scope": "predictions:write models:read",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "iss": "model-packaging",
        "aud": "model-packaging-api",
        "jti": "j1",
    }
    claims.update(overrides)
    return claims


def _body(tag: str) -> dict[str, Any]:
    row = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"][0]
    return {"model": tag.split(":")[0], "inputs": [row]}


async def _user(url: str, username: str, scopes: list[str]) -> None:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        await create_user(
            session_factory(engine), username=username, password=PASSWORD, scopes=scopes
        )
    finally:
        await engine.dispose()


async def _token(client: httpx.AsyncClient, username: str, **extra: str) -> httpx.Response:
    form = {"grant_type": "password", "username": username, "password": PASSWORD, **extra}
    return await client.post("/api/v1/auth/token", data=form)


def _assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="model-packaging"')
    assert response.json()["error"]["code"] == "unauthorized"


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC = (
    RSA_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


@pytest.mark.parametrize(
    ("headers", "case"),
    [
        ({}, "missing"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "not bearer"),
        ({"Authorization": "Bearer"}, "empty"),
        ({"Authorization": "Bearer not.a.jwt"}, "malformed"),
        (
            {
                "Authorization": "Bearer "
                + jwt.encode(_claims(exp=datetime.now(UTC) - timedelta(seconds=5)), SECRET)
            },
            "expired",
        ),
        (
            {"Authorization": "Bearer " + jwt.encode(_claims(), "another-secret-" + "y" * 40)},
            "bad signature",
        ),
        (
            {"Authorization": "Bearer " + jwt.encode(_claims(iss="someone-else"), SECRET)},
            "wrong issuer",
        ),
        (
            {"Authorization": "Bearer " + jwt.encode(_claims(aud="another-api"), SECRET)},
            "wrong audience",
        ),
        ({"Authorization": "Bearer " + jwt.encode(_claims(), None, algorithm="none")}, "alg none"),
        (
            {"Authorization": "Bearer " + jwt.encode(_claims(), RSA_KEY, algorithm="RS256")},
            "unexpected algorithm",
        ),
        (
            {"Authorization": "Bearer " + jwt.encode({**_claims(), "jti": None}, SECRET)},
            "missing claim",
        ),
        # Correctly signed, but bound to no account (no uid and epoch): not a token we issued.
        ({"Authorization": "Bearer " + jwt.encode(_claims(), SECRET)}, "no account"),
        (
            {
                "Authorization": "Bearer "
                + jwt.encode(_claims(uid="0" * 32, epoch="0", scope="admin"), SECRET)
            },
            "unknown account",
        ),
        ({"X-API-Key": "mpk_0123456789ab_not-a-real-key"}, "unknown api key"),
    ],
)
async def test_bad_credentials_are_401_with_a_challenge(
    headers: dict[str, str],
    case: str,
    auth_db: str,
    auth: AuthSettings,
    reference_models: dict[str, str],
) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=auth_db, auth=auth) as (client, _):
        response = await client.post("/api/v1/predictions", json=_body(tag), headers=headers)

    _assert_401(response)
    # One message for every bad credential: the client is not told which part was wrong.
    assert response.json()["error"]["message"] in {
        "Authentication required: send a bearer token or API key.",
        "The credential is invalid, expired or revoked.",
    }


async def test_password_grant_token_works_and_records_the_principal(
    auth_db: str, auth: AuthSettings, unique: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    await _user(auth_db, f"client-{unique}", ["predictions:write", "predictions:read"])
    async with gateway_client([tag], db_url=auth_db, auth=auth) as (client, _):
        issued = await _token(client, f"client-{unique}")
        token = issued.json()["access_token"]
        created = await client.post(
            "/api/v1/predictions", json=_body(tag), headers={"Authorization": f"Bearer {token}"}
        )
        record = await client.get(
            f"/api/v1/predictions/{created.json()['data']['predictions'][0]['id']}",
            headers={"Authorization": f"Bearer {token}"},
        )

    assert issued.status_code == 200
    assert issued.json()["token_type"] == "bearer"
    assert issued.json()["expires_in"] == 3600
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="model-packaging-api")
    assert {"sub", "scope", "iat", "exp", "iss", "aud", "jti"} <= set(claims)
    assert created.status_code == 201
    assert record.json()["data"]["principal"] == f"client-{unique}"


async def test_wrong_password_is_invalid_grant(
    auth_db: str, auth: AuthSettings, unique: str, reference_models: dict[str, str]
) -> None:
    await _user(auth_db, f"user-{unique}", ["models:read"])
    async with gateway_client([reference_models["cancer-rf"]], db_url=auth_db, auth=auth) as (
        client,
        _,
    ):
        wrong = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": f"user-{unique}", "password": "nope" * 4},
        )
        unknown = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": f"ghost-{unique}", "password": PASSWORD},
        )
        too_wide = await _token(client, f"user-{unique}", scope="admin")

    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"] == "invalid_grant"
    assert too_wide.json()["error"] == "invalid_scope"


async def test_missing_scope_is_403(
    auth_db: str, auth: AuthSettings, unique: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    reader = await new_account(auth_db, auth, f"reader-{unique}", ["models:read"])
    async with gateway_client([tag], db_url=auth_db, auth=auth) as (client, _):
        headers = reader.headers
        predict = await client.post("/api/v1/predictions", json=_body(tag), headers=headers)
        models = await client.get("/api/v1/models", headers=headers)
        users = await client.get("/api/v1/users", headers=headers)

    assert predict.status_code == 403
    assert predict.json()["error"]["details"]["required_scope"] == "predictions:write"
    assert models.status_code == 200
    assert users.status_code == 403


async def test_probes_and_token_endpoint_stay_open(
    auth_db: str, auth: AuthSettings, reference_models: dict[str, str]
) -> None:
    async with gateway_client([reference_models["cancer-rf"]], db_url=auth_db, auth=auth) as (
        client,
        _,
    ):
        health = await client.get("/health")
        ready = await client.get("/ready")
        docs = await client.get("/api/v1/openapi.json")

    assert (health.status_code, ready.status_code, docs.status_code) == (200, 200, 200)


async def test_rs256_tokens_from_an_external_provider(
    auth_db: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    settings = AuthSettings(
        enabled=True,
        jwt_algorithm="RS256",
        jwt_public_key=RSA_PUBLIC,
        jwt_issuer="https://idp.example",
        jwt_audience="gateway",
    )
    good = jwt.encode(_claims(iss="https://idp.example", aud="gateway"), RSA_KEY, algorithm="RS256")
    confused = jwt.encode(_claims(iss="https://idp.example", aud="gateway"), "k" * 40)
    async with gateway_client([tag], db_url=auth_db, auth=settings) as (client, _):
        accepted = await client.post(
            "/api/v1/predictions", json=_body(tag), headers={"Authorization": f"Bearer {good}"}
        )
        refused = await client.post(
            "/api/v1/predictions", json=_body(tag), headers={"Authorization": f"Bearer {confused}"}
        )

    assert accepted.status_code == 201
    _assert_401(refused)


async def test_admin_manages_users_and_keys_and_revocation_is_immediate(
    auth_db: str, auth: AuthSettings, unique: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    as_admin = (await new_account(auth_db, auth, f"admin-{unique}", ["admin"])).headers
    async with gateway_client([tag], db_url=auth_db, auth=auth) as (client, _):
        user = await client.post(
            "/api/v1/users",
            headers=as_admin,
            json={
                "username": f"svc-{unique}",
                "password": PASSWORD,
                "scopes": ["predictions:write"],
            },
        )
        duplicate = await client.post(
            "/api/v1/users",
            headers=as_admin,
            json={
                "username": f"svc-{unique}",
                "password": PASSWORD,
                "scopes": ["predictions:write"],
            },
        )
        user_id = user.json()["data"]["id"]
        key = await client.post(
            "/api/v1/api-keys", headers=as_admin, json={"name": "batch job", "user_id": user_id}
        )
        secret = key.json()["data"]["key"]
        listed = await client.get("/api/v1/api-keys", headers=as_admin, params={"limit": 200})
        by_bearer = await client.post(
            "/api/v1/predictions", json=_body(tag), headers={"Authorization": f"Bearer {secret}"}
        )
        by_header = await client.post(
            "/api/v1/predictions", json=_body(tag), headers={"X-API-Key": secret}
        )
        revoked = await client.delete(
            f"/api/v1/api-keys/{key.json()['data']['id']}", headers=as_admin
        )
        after = await client.post(
            "/api/v1/predictions", json=_body(tag), headers={"X-API-Key": secret}
        )
        changed = await client.patch(
            f"/api/v1/users/{user_id}", headers=as_admin, json={"is_active": False}
        )
        users = await client.get("/api/v1/users", headers=as_admin)
        deleted = await client.delete(f"/api/v1/users/{user_id}", headers=as_admin)

    assert user.status_code == 201
    assert "password" not in user.text
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "conflict"
    assert key.status_code == 201
    assert secret.startswith("mpk_")
    assert secret not in listed.text
    assert by_bearer.status_code == by_header.status_code == 201
    assert revoked.status_code == 204
    _assert_401(after)
    assert changed.json()["data"]["is_active"] is False
    assert users.json()["meta"]["total"] >= 1
    assert deleted.status_code == 204


async def test_second_admin_bootstrap_is_a_conflict(auth_db: str, unique: str) -> None:
    engine = create_engine(DatabaseSettings(url=auth_db))
    sessions: async_sessionmaker = session_factory(engine)  # type: ignore[type-arg]
    try:
        # Another test in this module may have bootstrapped first; the next must fail anyway.
        with contextlib.suppress(Conflict):
            await bootstrap_admin(sessions, username=f"root-{unique}", password=PASSWORD)
        with pytest.raises(Conflict, match="admin already exists"):
            await bootstrap_admin(sessions, username=f"root2-{unique}", password=PASSWORD)
    finally:
        await engine.dispose()


async def test_an_admins_narrow_key_carries_exactly_its_scopes(
    auth_db: str, auth: AuthSettings, unique: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    as_admin = (await new_account(auth_db, auth, f"admin-narrow-{unique}", ["admin"])).headers
    async with gateway_client([tag], db_url=auth_db, auth=auth) as (client, _):
        created = await client.post(
            "/api/v1/api-keys", headers=as_admin, json={"name": "viewer", "scopes": ["models:read"]}
        )
        as_key = {"X-API-Key": created.json()["data"]["key"]}
        models = await client.get("/api/v1/models", headers=as_key)
        users = await client.get("/api/v1/users", headers=as_key)

    assert created.status_code == 201
    assert models.status_code == 200
    assert users.status_code == 403
