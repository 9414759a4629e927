"""The outermost middleware: request id, probes, body limit and the error envelope.

The inner apps here are tiny fakes standing in for FastAPI and BentoML's own routes.
"""

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from services.errors import ModelNotFound
from services.gateway.middleware import GatewayMiddleware
from services.http.context import after_response, current_request
from services.http.envelope import error_document, success
from tests.utils.asgi import (
    ASGIApp,
    Receive,
    RecordedResponse,
    Scope,
    Send,
    http_scope,
    read_body,
    request,
    respond,
)

LIMIT = 1024


ReadinessCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


class _Runtime:
    """Stands in for the service runtime: only its readiness matters here."""

    def __init__(self, readiness: ReadinessCheck) -> None:
        self.readiness = readiness


def _wrap(inner: ASGIApp, readiness: ReadinessCheck | None = None) -> GatewayMiddleware:
    runtime = _Runtime(readiness) if readiness is not None else None
    provider = (lambda: runtime) if runtime is not None else None
    return GatewayMiddleware(inner, max_body_bytes=LIMIT, runtime=provider)


def _answering(status: int, body: bytes, **options: Any) -> ASGIApp:
    """An inner app that reads the request and sends `body` with `status`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await respond(send, status, body, **options)

    return app


def _raising(exc: BaseException) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return app


class _Spy:
    """An inner app that records each call and answers 200 with the request's body size."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        body = await read_body(receive)
        await respond(send, 200, json.dumps({"size": len(body)}).encode())


async def _meta_echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the success envelope, whose meta carries the request id the app saw."""
    await respond(send, 200, json.dumps(success({"ok": True})).encode())


def _assert_envelope(response: RecordedResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status == status
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.body)
    document = response.json()
    assert set(document) == {"error"}
    assert set(document["error"]) == {"code", "message", "details"}
    assert document["error"]["code"] == code
    error: dict[str, Any] = document["error"]
    return error


# request id


def test_a_valid_client_request_id_is_kept_and_echoed() -> None:
    response = request(_wrap(_meta_echo), headers=[("X-Request-ID", "client-req:0001")])

    assert response.headers["x-request-id"] == "client-req:0001"
    assert response.json()["meta"]["request_id"] == "client-req:0001"


@pytest.mark.parametrize(
    "given",
    ["short", "has spaces in it", "x" * 129, "bad/slash-1234", "ünïcode-12345"],
    ids=["too-short", "spaces", "too-long", "slash", "non-ascii"],
)
def test_an_invalid_client_request_id_is_replaced(given: str) -> None:
    response = request(_wrap(_meta_echo), headers=[("X-Request-ID", given)])

    echoed = response.headers["x-request-id"]
    assert echoed != given
    assert re.fullmatch(r"[0-9a-f]{32}", echoed)
    assert response.json()["meta"]["request_id"] == echoed


def test_a_request_without_an_id_gets_a_new_one() -> None:
    first = request(_wrap(_meta_echo))
    second = request(_wrap(_meta_echo))

    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_the_inner_apps_own_request_id_header_is_replaced_not_repeated() -> None:
    inner = _answering(200, b"{}", extra_headers=[(b"X-Request-ID", b"inner-0000000")])

    response = request(_wrap(inner), headers=[("X-Request-ID", "client-0000001")])

    assert response.headers["x-request-id"] == "client-0000001"


def test_the_request_context_is_reset_after_the_request() -> None:
    request(_wrap(_meta_echo), headers=[("X-Request-ID", "client-0000001")])

    assert current_request.get() is None


def test_after_response_work_runs_once_the_whole_response_was_sent() -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        after_response(lambda: events.append("after-response work"))
        await respond(send, 201, b'{"data": 1}', chunk_size=4)

    async def recording_send(message: dict[str, Any]) -> None:
        events.append(message["type"])

    async def drive() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        await _wrap(app)(http_scope("/x"), receive, recording_send)

    asyncio.run(drive())

    assert events[0] == "http.response.start"
    assert events[-1] == "after-response work"
    assert events.count("http.response.body") == 3


def test_error_responses_carry_the_request_id_too() -> None:
    response = request(_wrap(_raising(RuntimeError())), headers=[("X-Request-ID", "err-000001")])

    assert response.headers["x-request-id"] == "err-000001"


# probes


def test_health_answers_alive_without_calling_the_app() -> None:
    spy = _Spy()

    response = request(_wrap(spy), "/health")

    assert response.status == 200
    assert response.json()["data"] == {"status": "alive"}
    assert set(response.json()["meta"]) == {"timestamp", "request_id", "model_version"}
    assert spy.calls == 0


def test_ready_without_a_readiness_check_is_ready() -> None:
    response = request(_wrap(_Spy()), "/ready")

    assert response.status == 200
    assert response.json()["data"] == {"ready": True, "checks": {}}


def test_ready_reports_the_checks_when_ready() -> None:
    async def ready() -> tuple[bool, dict[str, Any]]:
        return True, {"runner:sklearn": "ok"}

    response = request(_wrap(_Spy(), readiness=ready), "/ready")

    assert response.status == 200
    assert response.json()["data"] == {"ready": True, "checks": {"runner:sklearn": "ok"}}


def test_ready_answers_503_envelope_with_the_checks_when_not_ready() -> None:
    async def not_ready() -> tuple[bool, dict[str, Any]]:
        return False, {"runner:sklearn": "unavailable", "database": "ok"}

    response = request(_wrap(_Spy(), readiness=not_ready), "/ready")

    error = _assert_envelope(response, 503, "not_ready")
    assert error["details"] == {"checks": {"runner:sklearn": "unavailable", "database": "ok"}}


# body limit


def test_a_declared_content_length_over_the_limit_is_refused_unread() -> None:
    spy = _Spy()

    response = request(
        _wrap(spy),
        "/api/v1/predictions",
        method="POST",
        headers=[("Content-Length", str(LIMIT + 1))],
        chunks=[b"x" * (LIMIT + 1)],
    )

    error = _assert_envelope(response, 413, "payload_too_large")
    assert str(LIMIT) in error["message"]
    assert spy.calls == 0


def test_a_body_of_exactly_the_limit_is_accepted() -> None:
    response = request(
        _wrap(_Spy()),
        method="POST",
        headers=[("Content-Length", str(LIMIT))],
        chunks=[b"x" * LIMIT],
    )

    assert response.status == 200
    assert response.json() == {"size": LIMIT}


def test_a_streamed_body_over_the_limit_is_refused() -> None:
    response = request(_wrap(_Spy()), method="POST", chunks=[b"x" * 600, b"x" * 600])

    error = _assert_envelope(response, 413, "payload_too_large")
    assert str(LIMIT) in error["message"]


def test_a_streamed_body_over_the_limit_is_413_even_if_the_app_swallows_the_error() -> None:
    async def swallowing(scope: Scope, receive: Receive, send: Send) -> None:
        # FastAPI turns any error while reading the body into its own 400.
        try:
            await read_body(receive)
        except Exception:
            await respond(send, 400, b'{"detail": "There was an error parsing the body"}')

    response = request(_wrap(swallowing), method="POST", chunks=[b"x" * 600, b"x" * 600])

    _assert_envelope(response, 413, "payload_too_large")


def test_a_streamed_body_under_the_limit_reaches_the_app_whole() -> None:
    response = request(_wrap(_Spy()), method="POST", chunks=[b"x" * 500, b"x" * 500])

    assert response.status == 200
    assert response.json() == {"size": 1000}


# error envelope


def test_a_plain_text_server_error_is_replaced_without_leaking_its_text() -> None:
    inner = _answering(500, b"Traceback: secret_table password=hunter2", content_type=b"text/plain")

    response = request(_wrap(inner))

    error = _assert_envelope(response, 500, "internal_error")
    assert error["message"] == "Internal server error."
    assert b"secret" not in response.body
    assert b"hunter2" not in response.body


def test_a_bentoml_json_array_error_is_replaced_by_the_envelope() -> None:
    inner = _answering(400, b'[{"error": "Invalid input: model internals here"}]')

    response = request(_wrap(inner))

    _assert_envelope(response, 400, "bad_request")
    assert b"internals" not in response.body


def test_a_replaced_error_keeps_its_status_and_other_headers() -> None:
    inner = _answering(429, b"slow down", extra_headers=[(b"retry-after", b"3")])

    response = request(_wrap(inner))

    _assert_envelope(response, 429, "rate_limited")
    assert response.headers["retry-after"] == "3"


def test_an_envelope_error_body_is_passed_through_untouched() -> None:
    body = error_document("model_not_found", "model 'x' is not served", {"served": ["a:1"]})

    response = request(_wrap(_answering(404, body)))

    assert response.status == 404
    assert response.body == body


def test_an_envelope_sent_in_several_chunks_is_passed_through_whole() -> None:
    body = error_document("validation_error", "3 problem(s)", {"errors": [{"row": 0}] * 20})

    response = request(_wrap(_answering(422, body, chunk_size=50)))

    assert response.status == 422
    assert response.body == body


def test_a_success_body_is_never_rewritten() -> None:
    response = request(_wrap(_answering(200, b"plain text is fine", content_type=b"text/plain")))

    assert response.status == 200
    assert response.body == b"plain text is fine"
    assert response.headers["content-type"] == "text/plain"


def test_an_unhandled_exception_becomes_a_500_envelope_without_its_message() -> None:
    response = request(_wrap(_raising(RuntimeError("database password=hunter2"))))

    error = _assert_envelope(response, 500, "internal_error")
    assert error["message"] == "Internal server error."
    assert b"hunter2" not in response.body


def test_an_app_error_becomes_its_status_code_and_details() -> None:
    exc = ModelNotFound("model 'x' is not served", details={"served": ["a:1"]})

    response = request(_wrap(_raising(exc)))

    error = _assert_envelope(response, 404, "model_not_found")
    assert error["message"] == "model 'x' is not served"
    assert error["details"] == {"served": ["a:1"]}


def test_an_error_after_the_response_started_sends_no_second_response() -> None:
    async def failing_midway(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("stream broke")

    response = request(_wrap(failing_midway))

    assert len(response.starts) == 1
    assert response.status == 200
    assert response.body == b"partial"


def test_an_error_before_a_held_error_body_was_sent_still_gives_the_envelope() -> None:
    async def failing_before_body(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        raise RuntimeError("no body")

    response = request(_wrap(failing_before_body))

    _assert_envelope(response, 500, "internal_error")


# the Open Inference Protocol's own error shape under /v2


def _assert_protocol_error(response: RecordedResponse, status: int) -> str:
    assert response.status == status
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.body)
    document = response.json()
    assert set(document) == {"error"}
    assert isinstance(document["error"], str)
    message: str = document["error"]
    return message


def test_a_protocol_error_under_v2_is_passed_through_untouched() -> None:
    body = b'{"error": "model \'x\' is not served"}'

    response = request(_wrap(_answering(404, body)), "/v2/models/x/infer", method="POST")

    assert response.status == 404
    assert response.body == body


def test_an_envelope_under_v2_becomes_the_protocol_shape_with_its_message_and_headers() -> None:
    body = error_document("unauthorized", "Authentication required.")
    inner = _answering(401, body, extra_headers=[(b"www-authenticate", b"Bearer")])

    response = request(_wrap(inner), "/v2/models/x")

    assert _assert_protocol_error(response, 401) == "Authentication required."
    assert response.headers["www-authenticate"] == "Bearer"


def test_any_other_error_under_v2_becomes_a_generic_protocol_error() -> None:
    inner = _answering(404, b"Not Found", content_type=b"text/plain")

    response = request(_wrap(inner), "/v2/nothing/here")

    assert _assert_protocol_error(response, 404) == "No such resource."


def test_an_unhandled_exception_under_v2_is_a_protocol_500_without_its_message() -> None:
    response = request(_wrap(_raising(RuntimeError("password=hunter2"))), "/v2/models/x/infer")

    assert _assert_protocol_error(response, 500) == "Internal server error."
    assert b"hunter2" not in response.body


def test_a_protocol_error_outside_v2_is_replaced_by_the_envelope() -> None:
    response = request(_wrap(_answering(400, b'{"error": "internals"}')), "/predict")

    _assert_envelope(response, 400, "bad_request")


def test_non_http_scopes_pass_straight_through() -> None:
    seen: list[str] = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        return None

    asyncio.run(_wrap(lifespan_app)({"type": "lifespan"}, receive, send))

    assert seen == ["lifespan"]
