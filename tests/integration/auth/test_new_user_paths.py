"""What a new user meets first: the token endpoint's RFC 6749 errors, a JSON body in the wrong
content type, Swagger UI (local assets, Authorize button, OAuth2 redirect), Argon2 off the loop."""

import asyncio
import json
import threading
from typing import Any

import bentoml
import pytest

from db.engine import create_engine, session_factory
from db.settings import DatabaseSettings
from services.auth import accounts
from services.auth.settings import AuthSettings
from tests.utils.accounts import PASSWORD, new_account
from tests.utils.databases import migrate, sqlite_url
from tests.utils.gateway import gateway_client

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def _body(tag: str) -> dict[str, Any]:
    row = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"][0]
    return {"model": tag.split(":")[0], "inputs": [row]}


async def test_token_errors_take_the_rfc_6749_shape(
    auth_db: str, auth: AuthSettings, unique: str
) -> None:
    account = await new_account(auth_db, auth, f"rfc-{unique}", ["models:read"])
    good = {"grant_type": "password", "username": account.username, "password": PASSWORD}
    async with gateway_client([], db_url=auth_db, auth=auth) as (client, _):
        answers = {
            "wrong password": await client.post(
                "/api/v1/auth/token", data={**good, "password": "not the password"}
            ),
            "unknown user": await client.post(
                "/api/v1/auth/token", data={**good, "username": f"ghost-{unique}"}
            ),
            "grant type": await client.post(
                "/api/v1/auth/token", data={**good, "grant_type": "client_credentials"}
            ),
            "scope": await client.post("/api/v1/auth/token", data={**good, "scope": "admin"}),
            "missing password": await client.post(
                "/api/v1/auth/token", data={k: v for k, v in good.items() if k != "password"}
            ),
            "json body": await client.post("/api/v1/auth/token", json=good),
        }

    codes = {case: response.json().get("error") for case, response in answers.items()}
    assert codes == {
        "wrong password": "invalid_grant",
        "unknown user": "invalid_grant",
        "grant type": "unsupported_grant_type",
        "scope": "invalid_scope",
        "missing password": "invalid_request",
        "json body": "invalid_request",
    }
    for case, response in answers.items():
        assert response.status_code == 400, case
        assert set(response.json()) == {"error", "error_description"}, case
        assert response.headers["cache-control"] == "no-store", case
        assert response.headers["x-request-id"], case
    assert answers["wrong password"].json() == answers["unknown user"].json()
    assert "password" in answers["missing password"].json()["error_description"]
    assert "form-encoded" in answers["json body"].json()["error_description"]


async def test_swagger_uis_authorize_request_gets_a_token_that_works(
    auth_db: str, auth: AuthSettings, unique: str
) -> None:
    account = await new_account(auth_db, auth, f"swagger-{unique}", ["admin"])
    async with gateway_client([], db_url=auth_db, auth=auth) as (client, _):
        document = (await client.get("/api/v1/openapi.json")).json()
        flow = document["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
        token_url = flow["password"]["tokenUrl"]
        # Exactly what Swagger UI 5 sends for the password flow with its default client
        # credentials location ("basic", empty client id and secret).
        issued = await client.post(
            token_url,
            content=f"grant_type=password&scope=admin&username={account.username}"
            f"&password={PASSWORD.replace(' ', '+')}",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "Basic Og==",
                "X-Requested-With": "XMLHttpRequest",
                "Accept": "application/json, text/plain, */*",
            },
        )
        token = issued.json()["access_token"]
        users = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})

    assert token_url == "/api/v1/auth/token"
    assert document["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert issued.status_code == 200
    assert issued.json()["token_type"] == "bearer"
    assert users.status_code == 200


async def test_swagger_ui_is_served_from_local_assets_without_credentials(
    auth_db: str, auth: AuthSettings
) -> None:
    async with gateway_client([], db_url=auth_db, auth=auth) as (client, _):
        page = await client.get("/api/v1/docs")
        redirect = await client.get("/api/v1/docs/oauth2-redirect")
        script = await client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
        style = await client.get("/api/v1/docs/assets/swagger-ui.css")
        icon = await client.get("/api/v1/docs/assets/favicon-32x32.png")
        unknown = await client.get("/api/v1/docs/assets/index.html")

    assert page.status_code == 200
    assert "/api/v1/docs/assets/swagger-ui-bundle.js" in page.text
    assert "/api/v1/docs/assets/swagger-ui.css" in page.text
    assert "/api/v1/docs/oauth2-redirect" in page.text
    assert "/api/v1/openapi.json" in page.text
    assert "cdn" not in page.text.lower()
    assert "https://" not in page.text
    assert redirect.status_code == 200
    assert "swaggerUIRedirectOauth2" in redirect.text
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/java")
    assert b"SwaggerUIBundle" in script.content
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/png"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "text/json"]
)
async def test_json_in_another_content_type_is_415_saying_what_to_send(
    content_type: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=None) as (client, _):
        refused = await client.post(
            "/api/v1/predictions",
            content=json.dumps(_body(tag)),
            headers={"Content-Type": content_type},
        )
        accepted = await client.post(
            "/api/v1/predictions",
            content=json.dumps(_body(tag)),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )

    assert refused.status_code == 415
    error = refused.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    assert content_type in error["message"]
    assert error["details"] == {"content_type": content_type, "expected": "application/json"}
    assert accepted.status_code == 201


async def test_argon2_never_runs_on_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    url = sqlite_url(tmp_path / "accounts.sqlite3")
    await asyncio.to_thread(migrate, url)  # Alembic runs its own event loop
    loop_thread = threading.get_ident()
    threads: list[int] = []
    real = accounts.hash_password

    def recording(password: str) -> str:
        threads.append(threading.get_ident())
        return real(password)

    monkeypatch.setattr(accounts, "hash_password", recording)
    engine = create_engine(DatabaseSettings(url=url))
    sessions = session_factory(engine)
    try:
        # The CLI's bootstrap and the API's create and change all go through these.
        user = await accounts.bootstrap_admin(sessions, username="first", password=PASSWORD)
        await accounts.create_user(sessions, username="second", password=PASSWORD, scopes=["admin"])
        await accounts.change_user(sessions, None, user.id, password="a new long passphrase")
    finally:
        await engine.dispose()

    assert len(threads) == 3
    assert loop_thread not in threads
