"""The one response envelope: `{data, meta}` on success, `{error: {code, message, details}}`."""

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from services.http.context import RequestContext, current_request, new_request_id
from services.http.envelope import (
    STATUS_CODES,
    error_document,
    generic_error,
    is_envelope,
    meta,
    success,
    timestamp,
)


@contextmanager
def _in_request(context: RequestContext) -> Iterator[RequestContext]:
    token = current_request.set(context)
    try:
        yield context
    finally:
        current_request.reset(token)


def test_success_wraps_data_with_the_request_meta() -> None:
    with _in_request(RequestContext(request_id="req-12345678", model_version="m:v1")):
        document = success({"answer": 42})

    assert document["data"] == {"answer": 42}
    assert set(document["meta"]) == {"timestamp", "request_id", "model_version"}
    assert document["meta"]["request_id"] == "req-12345678"
    assert document["meta"]["model_version"] == "m:v1"


def test_meta_outside_a_request_has_no_request_id_or_model_version() -> None:
    document = meta()

    assert document["request_id"] is None
    assert document["model_version"] is None


def test_meta_takes_extra_fields_such_as_pagination() -> None:
    with _in_request(RequestContext(request_id="req-12345678")):
        document = success([], total=3, pages=1, page=1, limit=50)

    assert document["meta"]["total"] == 3
    assert document["meta"]["pages"] == 1
    assert document["meta"]["request_id"] == "req-12345678"


def test_timestamp_is_utc_iso_8601_with_z() -> None:
    before = datetime.now(UTC)

    stamp = timestamp()

    assert stamp.endswith("Z")
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert before <= parsed <= datetime.now(UTC)


def test_request_ids_are_unique_hex() -> None:
    ids = {new_request_id() for _ in range(100)}

    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)


def test_error_document_is_the_error_envelope() -> None:
    body = error_document("not_found", "No such model.", {"served": ["a:1"]})

    assert json.loads(body) == {
        "error": {"code": "not_found", "message": "No such model.", "details": {"served": ["a:1"]}}
    }


def test_error_document_details_default_to_an_empty_object() -> None:
    assert json.loads(error_document("bad_request", "No."))["error"]["details"] == {}


def test_error_document_writes_values_json_lacks_as_strings() -> None:
    identifier = uuid.UUID(int=7)

    body = error_document("conflict", "Taken.", {"id": identifier})

    assert json.loads(body)["error"]["details"] == {"id": str(identifier)}


@pytest.mark.parametrize("status", sorted(STATUS_CODES))
def test_generic_error_uses_the_code_and_message_of_known_statuses(status: int) -> None:
    code, body = generic_error(status)

    assert code == STATUS_CODES[status][0]
    assert json.loads(body) == {
        "error": {"code": code, "message": STATUS_CODES[status][1], "details": {}}
    }


def test_generic_error_of_an_unknown_server_status_is_internal_error() -> None:
    code, body = generic_error(507)

    assert code == "internal_error"
    assert json.loads(body)["error"]["message"] == "The request failed."


def test_generic_error_of_an_unknown_client_status_is_a_plain_error() -> None:
    code, _ = generic_error(418)

    assert code == "error"


def test_our_envelope_is_recognised() -> None:
    assert is_envelope(error_document("bad_request", "No.", {"errors": []}))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'[{"error": "bad input"}]', id="bentoml-json-array"),
        pytest.param(b"Internal Server Error", id="plain-text"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b'{"detail": "Not Found"}', id="starlette-detail"),
        pytest.param(b'{"error": "boom"}', id="error-not-an-object"),
        pytest.param(b'{"error": {"code": "x", "message": "y"}}', id="no-details"),
    ],
)
def test_other_bodies_are_not_envelopes(body: bytes) -> None:
    assert not is_envelope(body)
