"""Inputs no database, driver or model input can take are 4xx naming what was wrong, never a
500, on PostgreSQL and SQLite: strings with NUL or lone surrogates wherever a string is stored
or compared, dates at the calendar's edges, numbers beyond a float32 model input or Python's
int parsing, and numbers `str.isdigit()` accepts but `int()` does not."""

from typing import Any

import bentoml
import httpx
import pytest

from services.auth.settings import AuthSettings
from tests.utils.accounts import PASSWORD, new_account
from tests.utils.gateway import gateway_client

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
AUTH = AuthSettings(enabled=True, jwt_secret="bad-inputs-secret-" + "z" * 32)
SURROGATE = '"\\ud800"'  # JSON text for a lone UTF-16 surrogate, which UTF-8 cannot encode


def _json(text: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Raw JSON text (what a client's encoder may send but Python's would not write)."""
    return {"content": text, "headers": {**(headers or {}), "Content-Type": "application/json"}}


def _feature(tag: str, dtype: str) -> str:
    features = bentoml.models.get(tag).info.metadata["feature_schema"]["features"]
    return next(f["name"] for f in features if f["dtype"] == dtype)


def _golden(tag: str) -> dict[str, Any]:
    row: dict[str, Any] = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"][0]
    return row


def _assert_4xx(response: httpx.Response, status: int, where: str | None = None) -> None:
    assert response.status_code == status, response.text
    if where is not None:
        assert where in response.text, response.text


async def test_strings_a_database_cannot_store_are_refused_naming_the_field(
    db_url: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["fraud-xgb"]
    admin = await new_account(db_url, AUTH, "root-inputs", ["admin"])
    headers = admin.headers
    async with gateway_client([tag], db_url=db_url, auth=AUTH) as (client, _):
        token = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "root\x00inputs", "password": PASSWORD},
        )
        token_password = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "root-inputs", "password": "p\x00" * 7},
        )
        key_nul = await client.post("/api/v1/api-keys", headers=headers, json={"name": "a\x00b"})
        key_surrogate = await client.post(
            "/api/v1/api-keys", **_json('{"name": ' + SURROGATE + "}", headers)
        )
        user_nul = await client.post(
            "/api/v1/users",
            headers=headers,
            json={"username": "bad\x00name", "password": PASSWORD, "scopes": ["admin"]},
        )
        password_surrogate = await client.post(
            "/api/v1/users",
            **_json(
                '{"username": "ok-name", "password": "long enough ' + SURROGATE[1:-1] + '", '
                '"scopes": ["admin"]}',
                headers,
            ),
        )
        label = await client.patch(
            "/api/v1/predictions/00000000-0000-0000-0000-000000000000",
            headers=headers,
            json={"label": "x\x00"},
        )
        listed = await client.get(
            "/api/v1/predictions", headers=headers, params={"filter[model_version]": "v\x00"}
        )
        exported = await client.get(
            "/api/v1/predictions/export", headers=headers, params={"filter[principal]": "\x00"}
        )
        category = await client.post(
            "/api/v1/predictions",
            headers=headers,
            json={
                "model": "fraud-xgb",
                "inputs": [{**_golden(tag), _feature(tag, "category"): "gro\x00cery"}],
            },
        )

    for response in (token, token_password):
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_request"
    _assert_4xx(key_nul, 422, "body.name")
    _assert_4xx(key_surrogate, 422, "body.name")
    _assert_4xx(user_nul, 422, "body.username")
    _assert_4xx(password_surrogate, 422, "body.password")
    _assert_4xx(label, 422, "body.label")
    _assert_4xx(listed, 400, "filter[model_version]")
    # The export refuses before its 200 starts: a complete error response, not a cut body.
    _assert_4xx(exported, 400, "filter[principal]")
    assert exported.headers["content-type"] == "application/json"
    _assert_4xx(category, 422, "unknown_category")


@pytest.mark.parametrize("policy", ["reject", "flag"])
async def test_numbers_no_model_input_can_hold_are_refused_naming_the_field(
    policy: str, db_url: str, reference_models: dict[str, str]
) -> None:
    tag = reference_models["fraud-xgb"]
    integer, number = _feature(tag, "int"), _feature(tag, "float")
    golden = _golden(tag)
    cases = {
        "int with 400 digits": {**golden, integer: int("9" * 400)},
        "negative int with 400 digits": {**golden, integer: -int("9" * 400)},
        "float beyond float32": {**golden, number: 1e39},
        "int beyond float32": {**golden, number: 2**130},
    }
    async with gateway_client([tag], db_url=db_url, range_policy=policy) as (client, _):
        answers = {
            case: await client.post(
                "/api/v1/predictions", json={"model": "fraud-xgb", "inputs": [row]}
            )
            for case, row in cases.items()
        }
        # Beyond what Python parses as an int (4,300 digits): a malformed body.
        huge = await client.post(
            "/api/v1/predictions",
            **_json('{"model": "fraud-xgb", "inputs": [{"hour": ' + "9" * 5000 + "}]}"),
        )
        label = await client.patch(
            "/api/v1/predictions/00000000-0000-0000-0000-000000000000",
            json={"label": int("7" * 1000)},
        )

    for case, response in answers.items():
        assert response.status_code == 422, (case, response.text)
        (problem,) = response.json()["error"]["details"]["errors"]
        assert problem["code"] == "not_representable", case
        assert problem["field"] in (integer, number), case
    _assert_4xx(huge, 400)
    # A label is compared with the model's classes, never converted: no such prediction.
    _assert_4xx(label, 404)


async def test_dates_and_counts_at_the_edges(db_url: str, reference_models: dict[str, str]) -> None:
    tag = reference_models["cancer-rf"]
    async with gateway_client([tag], db_url=db_url) as (client, _):
        statuses = {
            params: (await client.get("/api/v1/predictions", params=dict([params]))).status_code
            for params in [
                ("filter[created_after]", "0001-01-01T00:00:00+14:00"),
                ("filter[created_before]", "9999-12-31T23:59:59-14:00"),
                ("filter[created_after]", "0001-01-01T00:00:00Z"),
                ("filter[created_before]", "9999-12-31T23:59:59Z"),
                ("page", "\u00b2"),
                ("limit", "\u0661\u0660"),
                ("page", "9" * 5000),
                ("limit", "1" + "0" * 400),
            ]
        }
        export = await client.get(
            "/api/v1/predictions/export", params={"filter[created_after]": "0001-01-01T00:00:00Z"}
        )

    assert list(statuses.values()) == [400, 400, 200, 200, 400, 400, 400, 400]
    assert export.status_code == 200
