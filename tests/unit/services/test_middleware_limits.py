"""The outermost middleware's time limits, probes, database failures and HTTP metrics.

Every answer here is the error envelope with the request id: these are the responses that, on
the old code, came from BentoML (a bare 504 after 60 s) or never came at all.
"""

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from services.gateway.drain import Drain
from services.gateway.middleware import GatewayMiddleware
from services.settings import ServerSettings
from tests.utils.asgi import (
    ASGIApp,
    Message,
    Receive,
    RecordedResponse,
    Scope,
    Send,
    http_scope,
    read_body,
    request,
    respond,
)

LIMITS = ServerSettings(body_timeout_s=0.2, request_timeout_s=0.4)


def _wrap(inner: ASGIApp, limits: ServerSettings = LIMITS) -> GatewayMiddleware:
    return GatewayMiddleware(inner, max_body_bytes=1024, limits=limits)


async def _stalled_request(
    app: ASGIApp, *, first_chunk: bytes | None, path: str = "/api/v1/predictions"
) -> RecordedResponse:
    """POST whose body sends `first_chunk` (if any) and then nothing more, ever."""
    headers = [("X-Request-ID", "stalled-0001"), ("Content-Length", "100")]
    scope = http_scope(path, method="POST", headers=headers)
    sent_first = False
    never = asyncio.Event()
    recorded = RecordedResponse()

    async def receive() -> Message:
        nonlocal sent_first
        if first_chunk is not None and not sent_first:
            sent_first = True
            return {"type": "http.request", "body": first_chunk, "more_body": True}
        await never.wait()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        recorded.messages.append(message)

    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    return recorded


def _error(response: RecordedResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    return error


# body and request time limits


async def _reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = await read_body(receive)
    await respond(send, 200, body)


def test_a_body_that_stops_arriving_is_408_in_the_envelope() -> None:
    response = asyncio.run(_stalled_request(_wrap(_reading_app), first_chunk=b'{"model":'))

    error = _error(response, 408, "request_timeout")
    assert "0.2 s" in error["message"]
    assert response.headers["x-request-id"] == "stalled-0001"
    assert response.headers["connection"] == "close"


def test_a_body_timeout_is_408_even_if_the_app_swallows_errors() -> None:
    async def swallowing(scope: Scope, receive: Receive, send: Send) -> None:
        try:  # FastAPI turns any error while reading the body into its own 400
            await read_body(receive)
        except Exception:
            await respond(send, 400, b'{"detail": "There was an error parsing the body"}')

    response = asyncio.run(_stalled_request(_wrap(swallowing), first_chunk=None))

    _error(response, 408, "request_timeout")
    assert response.headers["connection"] == "close"


def test_a_handler_that_never_answers_is_504_in_the_envelope() -> None:
    async def hanging(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await asyncio.Event().wait()

    response = request(_wrap(hanging), "/api/v1/models", headers=[("X-Request-ID", "hang-00001")])
    # (a GET announces no body: only the request deadline applies, even past the body one)

    error = _error(response, 504, "gateway_timeout")
    assert "0.4 s" in error["message"]
    assert response.headers["x-request-id"] == "hang-00001"


def test_the_request_deadline_ends_when_the_response_starts() -> None:
    async def slow_stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.6)  # longer than the request timeout, after the start
        await send({"type": "http.response.body", "body": b"late but fine"})

    response = request(_wrap(slow_stream))

    assert response.status == 200
    assert response.body == b"late but fine"


def test_a_body_that_arrives_in_time_reaches_the_app() -> None:
    response = request(_wrap(_reading_app), method="POST", chunks=[b"abc", b"def"])

    assert response.status == 200
    assert response.body == b"abcdef"


# probes


@pytest.mark.parametrize("path", ["/health", "/livez", "/healthz"])
def test_every_liveness_probe_answers_the_envelope(path: str) -> None:
    response = request(_wrap(_reading_app), path)

    assert response.status == 200
    assert response.json()["data"] == {"status": "alive"}
    assert response.json()["meta"]["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/ready", "/readyz"])
def test_every_readiness_probe_answers_the_envelope(path: str) -> None:
    async def not_ready() -> tuple[bool, dict[str, str]]:
        return False, {"gateway": "draining"}

    class Runtime:
        readiness = staticmethod(not_ready)

    middleware = GatewayMiddleware(_reading_app, max_body_bytes=1024, runtime=Runtime)

    response = request(middleware, path)

    error = _error(response, 503, "not_ready")
    assert error["details"] == {"checks": {"gateway": "draining"}}


# database failures that escape a route


def test_a_driver_error_while_the_database_restarts_is_503_not_500() -> None:
    import asyncpg

    async def restarting(scope: Scope, receive: Receive, send: Send) -> None:
        raise asyncpg.CannotConnectNowError("the database system is starting up")

    response = request(_wrap(restarting))

    _error(response, 503, "database_unavailable")
    assert response.headers["retry-after"] == "1"


def test_an_os_error_outside_the_database_drivers_stays_a_500() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise ConnectionRefusedError("some other service")

    _error(request(_wrap(broken)), 500, "internal_error")


# metrics: labels are route templates, never raw paths


def _count(route: str, method: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_requests_total", {"route": route, "method": method, "status": status}
    )
    return value or 0.0


async def _ok(_: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


def test_requests_are_counted_by_route_template_and_unknown_paths_as_unmatched() -> None:
    api = Starlette(routes=[Route("/predictions/{prediction_id}", _ok)])
    app = Starlette(routes=[Mount("/api/v1", app=api), Route("/metrics", _ok)])
    middleware = _wrap(app)
    template = "/api/v1/predictions/{prediction_id}"
    before = _count(template, "GET", "200"), _count("unmatched", "GET", "404")

    for number in range(5):
        request(middleware, f"/api/v1/predictions/id-{number}")
        request(middleware, f"/no/such/path/{number}")
    request(middleware, "/api/v1/predictions/x", method="BREW")

    assert _count(template, "GET", "200") - before[0] == 5
    assert _count("unmatched", "GET", "404") - before[1] == 5
    assert _count(template, "other", "405") >= 1
    labels = {
        sample.labels["route"]
        for metric in REGISTRY.collect()
        if metric.name == "http_requests"
        for sample in metric.samples
    }
    assert not any(label.startswith("/no/such") for label in labels)


# drain


class _DrainingRuntime:
    def __init__(self) -> None:
        self.drain = Drain()

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        return (False, {"gateway": "draining"}) if self.drain.draining else (True, {})


def test_while_draining_new_requests_get_503_with_retry_after_and_close() -> None:
    runtime = _DrainingRuntime()
    runtime.drain.start()
    middleware = GatewayMiddleware(_reading_app, max_body_bytes=1024, runtime=lambda: runtime)

    response = request(middleware, "/api/v1/predictions", method="POST", chunks=[b"{}"])
    ready = request(middleware, "/ready")
    alive = request(middleware, "/health")

    _error(response, 503, "shutting_down")
    assert response.headers["retry-after"] == "1"
    assert response.headers["connection"] == "close"
    _error(ready, 503, "not_ready")
    assert alive.status == 200


def test_a_request_admitted_before_the_drain_finishes_and_is_counted() -> None:
    runtime = _DrainingRuntime()
    middleware = GatewayMiddleware(_reading_app, max_body_bytes=1024, runtime=lambda: runtime)
    seen: list[int] = []

    async def scenario() -> RecordedResponse:
        release = asyncio.Event()
        scope = http_scope("/api/v1/predictions", method="POST")
        recorded = RecordedResponse()
        chunks = [b'{"a":', b"1}"]

        async def receive() -> Message:
            if len(chunks) == 1:
                await release.wait()
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

        async def send(message: Message) -> None:
            recorded.messages.append(message)

        task = asyncio.create_task(middleware(scope, receive, send))
        await asyncio.sleep(0.05)
        seen.append(runtime.drain.in_flight)
        runtime.drain.start()  # SIGTERM arrives while the body is still on its way
        release.set()
        await task
        seen.append(runtime.drain.in_flight)
        assert await runtime.drain.finished(0.1)
        return recorded

    response = asyncio.run(scenario())

    assert response.status == 200
    assert response.body == b'{"a":1}'
    assert response.headers["connection"] == "close"
    assert seen == [1, 0]


def test_the_drain_gives_up_waiting_after_its_grace() -> None:
    async def scenario() -> bool:
        drain = Drain()
        drain.enter()
        return await drain.finished(0.05)

    assert asyncio.run(scenario()) is False
