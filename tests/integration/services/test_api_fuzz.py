"""Schemathesis against the whole API, in-process on a real PostgreSQL database, as an admin.

Every operation of the served OpenAPI document (with the served models' request shapes, so
predictions reach their 201) gets generated valid and invalid requests: NUL characters, huge
and negative numbers, odd dates, missing and extra fields. Every response must be no server
error, documented (status code), of the documented content type, and match its schema.

Budget: FUZZ_EXAMPLES per operation and generation mode (positive, negative); FUZZ_EXAMPLES=200
in the environment searches deeper. Hypothesis runs derandomized, so a run is reproducible.
"""

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from services.auth.settings import AuthSettings
from tests.utils.accounts import Account, new_account
from tests.utils.databases import migrated_postgres
from tests.utils.gateway import LifespanGateway
from tests.utils.openapi import OPENAPI_PATH

pytestmark = pytest.mark.integration
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
AUTH = AuthSettings(enabled=True, jwt_secret="fuzz-secret-" + "f" * 40)
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


@pytest.fixture(scope="module")
def fuzz_database() -> Iterator[str]:
    with migrated_postgres() as url:
        yield url


@pytest.fixture(scope="module")
def admin(fuzz_database: str) -> Account:
    return asyncio.run(new_account(fuzz_database, AUTH, "fuzz-admin", ["admin"]))


@pytest.fixture(scope="module")
def api_schema(fuzz_database: str, reference_models: dict[str, str]) -> Iterator[OpenApiSchema]:
    app = LifespanGateway(sorted(reference_models.values()), db_url=fuzz_database, auth=AUTH)
    loaded = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    yield loaded
    # Close the runtime (and its database pool) before the database is dropped.
    with contextlib.suppress(Exception):
        asgi.shutdown_lifespans()


def _poison(case: schemathesis.Case) -> bool:
    """Append a NUL to every string the case sends; whether there was any. Hypothesis seldom
    draws one by itself. (Lone surrogates, which Schemathesis cannot serialize, have their own
    tests in tests/integration/db/test_bad_inputs.py.)"""
    changed = False

    def poisoned(value: Any, marker: str) -> Any:
        nonlocal changed
        if isinstance(value, str):
            changed = True
            return value + marker
        if isinstance(value, list):
            return [poisoned(item, marker) for item in value]
        if isinstance(value, dict):
            return {key: poisoned(item, marker) for key, item in value.items()}
        return value

    if isinstance(case.body, (dict, list, str)):
        case.body = poisoned(case.body, "\x00")
    for part in ("query", "path_parameters"):
        values = getattr(case, part)
        if values:
            setattr(case, part, poisoned(dict(values), "\x00"))
    return changed


NO_VALID_EXAMPLE = {"/auth/token", "/jobs"}


def _operations() -> list[str]:
    """Every operation of the committed contract (the served document has the same ones)."""
    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    return [f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops]


# Schemathesis' own pytest loader (`from_fixture`) does not run on pytest 9, so each operation
# drives its strategies with Hypothesis directly: the same generation and the same checks.
@pytest.mark.parametrize("operation", _operations())
@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
def test_no_input_gets_an_undocumented_or_server_error(
    operation: str, mode: GenerationMode, api_schema: OpenApiSchema, admin: Account
) -> None:
    method, path = operation.split(" ", 1)
    strategy = api_schema[path][method].as_strategy(generation_mode=mode)
    statuses: set[int] = set()

    @given(case=strategy)
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        statuses.add(case.call_and_validate(headers=admin.headers, checks=CHECKS).status_code)
        if mode == GenerationMode.POSITIVE and _poison(case):
            # The same valid request with every string carrying what no database stores: a
            # string may hold anything by the schema, so the answer must still be documented.
            case.call_and_validate(headers=admin.headers, checks=CHECKS)

    check()
    # Valid requests reach the real work (a 201 prediction, a created user...), not only 4xx:
    # every operation without an id to guess, but the token route (random credentials) and the
    # job upload (random bytes are no Parquet or CSV file with the model's columns; the job
    # tests submit real files).
    if mode == GenerationMode.POSITIVE and "{" not in path and path not in NO_VALID_EXAMPLE:
        assert any(200 <= status < 300 for status in statuses), (operation, statuses)
