"""The outermost ASGI middleware: request id, probes, time limits, body limit, error envelope,
access log and HTTP metrics.

It wraps everything the gateway serves, BentoML's own routes included, so every error body a
client sees is the envelope: a non-envelope error from anywhere is replaced by a generic one
(its original text, which may carry internals, goes to the log only). Its own time limits are
below BentoML's traffic timeout, so a stalled body is a 408 and a stalled handler a 504, both
in the envelope, before BentoML's bare 504 could answer.
"""

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.auth.principal import principal_of
from services.errors import AppError
from services.gateway.drain import Drain
from services.http.asgi import retry_after, send_document, send_error
from services.http.context import (
    RUNTIME_KEY,
    RequestContext,
    current_request,
    new_request_id,
    scope_state,
)
from services.http.envelope import generic_error, is_envelope, success
from services.http.routes import route_template
from services.observability.logs import ACCESS_LOGGER
from services.observability.metrics import ERRORS, HTTP_DURATION, HTTP_REQUESTS, method_label
from services.persistence import is_database_failure
from services.settings import ServerSettings

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# BentoML's probe paths answer like ours, so no probe anywhere returns a bare body.
LIVENESS_PATHS = frozenset({"/health", "/livez", "/healthz"})
READINESS_PATHS = frozenset({"/ready", "/readyz"})
PROBE_PATHS = LIVENESS_PATHS | READINESS_PATHS
QUIET_PATHS = PROBE_PATHS | {"/metrics"}
access_log = logging.getLogger(ACCESS_LOGGER)
logger = logging.getLogger("services.gateway")


class ReadyRuntime(Protocol):
    """What this middleware needs from the service runtime: its readiness."""

    def readiness(self) -> Awaitable[tuple[bool, dict[str, str]]]: ...


RuntimeProvider = Callable[[], Any]


class BodyTooLarge(Exception):
    """The request body passed the configured limit while it was being read."""


class BodyTimeout(Exception):
    """The request body did not arrive within the body timeout."""


class GatewayMiddleware:
    """See the module docstring. `runtime` returns the service runtime (None while starting):
    it goes into every request's state, the one way every inner layer reaches it, and its
    readiness answers `/ready`. Without a provider (unit tests) /ready is always ready."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        runtime: RuntimeProvider | None = None,
        limits: ServerSettings | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.runtime = runtime
        self.limits = limits or ServerSettings()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.runtime is not None:
            scope_state(scope)[RUNTIME_KEY] = self.runtime()
        # Labelled before the inner apps rewrite the scope (mounts change root_path and app).
        route = route_template(scope.get("app") or self.app, scope, PROBE_PATHS)
        context = RequestContext(request_id=_request_id(scope))
        token = current_request.set(context)
        started = time.perf_counter()
        state = _ResponseState()
        try:
            await self._handle(scope, receive, _wrap_send(send, context, state), state)
        finally:
            current_request.reset(token)
            seconds = time.perf_counter() - started
            method = method_label(scope.get("method", ""))
            HTTP_REQUESTS.labels(route=route, method=method, status=str(state.status)).inc()
            HTTP_DURATION.labels(route=route, method=method).observe(seconds)
            _log(scope, context, state.status, seconds)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, state: "_ResponseState"
    ) -> None:
        path = scope["path"]
        if path in LIVENESS_PATHS:
            await send_document(send, 200, success({"status": "alive"}))
            return
        if path in READINESS_PATHS:
            await self._ready(scope, send)
            return
        drain: Drain | None = getattr(scope_state(scope).get(RUNTIME_KEY), "drain", None)
        if drain is None or path == "/metrics":
            await self._admitted(scope, receive, send, state)
            return
        if drain.draining:
            await send_error(
                send,
                503,
                "shutting_down",
                "This server is shutting down; retry (another replica will answer).",
                headers=[(b"retry-after", b"1"), (b"connection", b"close")],
            )
            return
        state.drain = drain
        drain.enter()
        try:
            await self._admitted(scope, receive, send, state)
        finally:
            drain.leave()

    async def _admitted(
        self, scope: Scope, receive: Receive, send: Send, state: "_ResponseState"
    ) -> None:
        path = scope["path"]
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await send_error(
                send, 413, "payload_too_large", f"request body exceeds {self.max_body_bytes} bytes"
            )
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.request_timeout_s
        receive = self._limited(receive, state, loop.time() + self.limits.body_timeout_s)
        try:
            async with asyncio.timeout_at(deadline) as timer:
                state.timer = timer
                try:
                    await self.app(scope, receive, send)
                finally:
                    state.timer = None  # a finished timer must not be rescheduled
        except Exception as exc:
            timed_out = timer.expired()
            if state.started:  # too late for another response; the client sees a cut body
                logger.exception("error after the response started on %s", path)
                return
            await self._error(scope, send, state, exc, timed_out=timed_out)

    async def _error(
        self, scope: Scope, send: Send, state: "_ResponseState", exc: Exception, *, timed_out: bool
    ) -> None:
        if isinstance(exc, BodyTooLarge) or state.body_too_large:
            await send_error(
                send, 413, "payload_too_large", f"request body exceeds {self.max_body_bytes} bytes"
            )
        elif isinstance(exc, BodyTimeout) or state.body_timed_out:
            await _send_body_timeout(send, self.limits.body_timeout_s)
        elif isinstance(exc, TimeoutError) and timed_out:
            seconds = self.limits.request_timeout_s
            logger.warning("no response within %s s on %s", seconds, scope["path"])
            await send_error(
                send,
                504,
                "gateway_timeout",
                f"The request was not answered within {self.limits.request_timeout_s:g} s.",
            )
        elif isinstance(exc, AppError):
            await send_error(
                send,
                exc.status_code,
                exc.error_code,
                exc.message,
                exc.details,
                retry_after(exc.retry_after_s),
            )
        elif is_database_failure(exc):
            logger.error("database unavailable on %s: %r", scope["path"], exc)
            await send_error(
                send,
                503,
                "database_unavailable",
                "The database is not available right now; retry later.",
                headers=retry_after(1),
            )
        else:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope["path"])
            await send_error(send, 500, "internal_error", "Internal server error.")

    def _limited(self, receive: Receive, state: "_ResponseState", body_deadline: float) -> Receive:
        seen = 0
        complete = False

        async def limited() -> Message:
            nonlocal seen, complete
            if complete:  # after the body, apps wait for a disconnect: no deadline on that
                return await receive()
            try:
                async with asyncio.timeout_at(body_deadline):
                    message = await receive()
            except TimeoutError:
                # The app may swallow this (FastAPI answers 400); the error body becomes 408.
                state.body_timed_out = True
                raise BodyTimeout from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if seen > self.max_body_bytes:
                    state.body_too_large = True
                    raise BodyTooLarge
            return message

        return limited

    async def _ready(self, scope: Scope, send: Send) -> None:
        if self.runtime is None:
            await send_document(send, 200, success({"ready": True, "checks": {}}))
            return
        runtime: ReadyRuntime | None = scope_state(scope)[RUNTIME_KEY]
        if runtime is None:
            ready, checks = False, {"gateway": "starting"}
        else:
            ready, checks = await runtime.readiness()
        if ready:
            await send_document(send, 200, success({"ready": True, "checks": checks}))
        else:
            await send_error(
                send, 503, "not_ready", "The service is not ready.", {"checks": checks}
            )


class _ResponseState:
    status = 500
    started = False  # a response start was sent on to the server: too late for another one
    body_too_large = False
    body_timed_out = False
    timer: asyncio.Timeout | None = None  # the request deadline, until the response starts
    drain: Drain | None = None  # set for requests admitted by a worker that can drain


async def _send_body_timeout(send: Send, seconds: float) -> None:
    # The rest of the body may still be on its way: this connection cannot carry another request.
    await send_error(
        send,
        408,
        "request_timeout",
        f"The request body did not arrive within {seconds:g} s.",
        headers=[(b"connection", b"close")],
    )


def _wrap_send(send: Send, context: RequestContext, state: _ResponseState) -> Send:
    """Add X-Request-ID to every response, and replace error bodies that are not envelopes."""
    held: dict[str, Any] = {}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            if state.timer is not None:
                state.timer.reschedule(None)  # the response has begun: the deadline is met
            state.status = message["status"]
            headers = [
                (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
            ]
            headers.append((b"x-request-id", context.request_id.encode()))
            if state.drain is not None and state.drain.draining:
                headers.append((b"connection", b"close"))  # reconnect, to a server that stays
            message["headers"] = headers
            if state.status >= 400:
                held["start"], held["body"] = message, b""
                return
            state.started = True
            await send(message)
            return
        if message["type"] == "http.response.body" and "start" in held:
            held["body"] += message.get("body", b"")
            if message.get("more_body", False):
                return
            state.started = True
            await _send_error_body(send, held["start"], held["body"], context, state)
            return
        await send(message)

    return wrapped


async def _send_error_body(
    send: Send, start: Message, body: bytes, context: RequestContext, state: _ResponseState
) -> None:
    status = start["status"]
    extra: list[tuple[bytes, bytes]] = []
    if state.body_too_large and status != 413:
        status = state.status = 413
        context.error_code, body = generic_error(status)
    elif state.body_timed_out and status != 408:
        status = state.status = 408
        context.error_code, body = generic_error(status)
        extra = [(b"connection", b"close")]
    elif is_envelope(body):
        context.error_code = context.error_code or json.loads(body)["error"]["code"]
    else:
        if body:
            logger.warning(
                "replaced a non-envelope %d body: %r",
                status,
                body[:500],
                extra={"request_id": context.request_id},
            )
        context.error_code, body = generic_error(status)
    keep = [
        (k, v) for k, v in start["headers"] if k.lower() not in (b"content-length", b"content-type")
    ]
    keep += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    keep += extra
    ERRORS.labels(code=context.error_code, status=str(status)).inc()
    await send({"type": "http.response.start", "status": status, "headers": keep})
    await send({"type": "http.response.body", "body": body})


def _request_id(scope: Scope) -> str:
    candidate = Headers(scope=scope).get("x-request-id")
    if candidate is not None and REQUEST_ID.fullmatch(candidate):
        return candidate
    return new_request_id()


def _content_length(scope: Scope) -> int | None:
    declared = Headers(scope=scope).get("content-length")
    if declared is None or not declared.isascii() or not declared.isdigit():
        return None
    return int(declared)


def _log(scope: Scope, context: RequestContext, status: int, seconds: float) -> None:
    path = scope.get("path", "")
    fields = {
        "request_id": context.request_id,
        "user_id": caller.subject if (caller := principal_of(scope)) else None,
        "method": scope.get("method"),
        "endpoint": path,
        "model_version": context.model_version,
        "latency_ms": round(seconds * 1000, 3),
        "status": status,
        "error": context.error_code,
        "pid": os.getpid(),
    }
    level = logging.DEBUG if path in QUIET_PATHS and status < 400 else logging.INFO
    access_log.log(level, "request", extra=fields)
