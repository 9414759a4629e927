"""The outermost ASGI middleware: request id, probes, time limits, body limit, error envelope,
access log and HTTP metrics.

It wraps everything the gateway serves, BentoML's own routes included, so every error body a
client sees is the envelope: a non-envelope error from anywhere is replaced by a generic one
(its original text, which may carry internals, goes to the log only). Under /v2 the same holds
in the Open Inference Protocol's shape, `{"error": "..."}`, which its clients read. Its own time
limits are below BentoML's traffic timeout, so a stalled body is a 408 and a stalled handler a
504, both in the envelope, before BentoML's bare 504 could answer.
"""

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
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
from services.http.envelope import generic_error, is_envelope, is_oauth_error, success
from services.http.oip import is_oip, is_oip_error, oip_error_from_envelope
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
        upload_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # POST routes that take file uploads (batch jobs), with their own size limit.
        self.upload_limits = dict(upload_limits or {})
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
            wrapped = _wrap_send(send, context, state, oip=is_oip(scope["path"]))
            await self._handle(scope, receive, wrapped, state)
        finally:
            current_request.reset(token)
            seconds = time.perf_counter() - started
            _observe(route, method_label(scope.get("method", "")), state.status, seconds)
            _log(scope, context, state.status, seconds)
            _run_after_response(context)

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
        if scope.get("method") == "POST" and path in self.upload_limits:
            state.body_limit = self.upload_limits[path]
        else:
            state.body_limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > state.body_limit:
            await send_error(
                send, 413, "payload_too_large", f"request body exceeds {state.body_limit} bytes"
            )
            return
        deadlines = _Deadlines(
            self.limits, body_expected=_has_body(scope, declared), path=path, state=state
        )
        try:
            try:
                await self.app(scope, self._limited(receive, state), send)
            finally:
                deadlines.close()
        except asyncio.CancelledError:
            if deadlines.expired is None:
                raise  # not ours: the client went away or the server is stopping
            deadlines.uncancel()
            if state.started:
                logger.warning("%s deadline passed after the response started", deadlines.expired)
                return
            await self._timeout(send, deadlines.expired)
        except Exception as exc:
            if state.started:  # too late for another response; the client sees a cut body
                logger.exception("error after the response started on %s", path)
                return
            await self._error(scope, send, state, exc)

    async def _timeout(self, send: Send, expired: str) -> None:
        if expired == "body":
            await send_error(
                send,
                408,
                "request_timeout",
                f"The request body did not arrive within {self.limits.body_timeout_s:g} s.",
                headers=[(b"connection", b"close")],  # the rest may still be on its way
            )
            return
        await send_error(
            send,
            504,
            "gateway_timeout",
            f"The request was not answered within {self.limits.request_timeout_s:g} s.",
        )

    async def _error(
        self, scope: Scope, send: Send, state: "_ResponseState", exc: Exception
    ) -> None:
        if isinstance(exc, BodyTooLarge) or state.body_too_large:
            await send_error(
                send, 413, "payload_too_large", f"request body exceeds {state.body_limit} bytes"
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

    def _limited(self, receive: Receive, state: "_ResponseState") -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if not message.get("more_body", False) and state.deadlines is not None:
                    state.deadlines.body_complete = True
                if seen > state.body_limit:
                    # The app may swallow this (FastAPI answers 400); the error body becomes 413.
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
    body_limit = 0
    deadlines: "_Deadlines | None" = None
    drain: Drain | None = None  # set for requests admitted by a worker that can drain


class _Deadlines:
    """Both time limits of one request on one timer (a timeout context per body read would
    cost a timer each): the body must be complete by the body deadline, the response must
    have begun by the request deadline. When one passes, the request's task is cancelled and
    `expired` says which ("body" or "response")."""

    def __init__(
        self, limits: ServerSettings, *, body_expected: bool, path: str, state: _ResponseState
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        now = self.loop.time()
        self.body_at = now + limits.body_timeout_s
        self.response_at = now + limits.request_timeout_s
        self.path = path
        self.state = state
        self.body_complete = not body_expected
        self.expired: str | None = None
        state.deadlines = self
        self._handle: asyncio.TimerHandle | None = self.loop.call_at(self._next(), self._fire)

    def _next(self) -> float:
        return self.response_at if self.body_complete else min(self.body_at, self.response_at)

    def _fire(self) -> None:
        self._handle = None
        if self.state.started or self.task is None:
            return
        now = self.loop.time()
        if not self.body_complete and now >= self.body_at:
            self.expired = "body"
        elif now >= self.response_at:
            self.expired = "response"
            logger.warning("no response in time on %s", self.path)
        else:
            self._handle = self.loop.call_at(self._next(), self._fire)
            return
        self.task.cancel()

    def uncancel(self) -> None:
        if self.task is not None:
            self.task.uncancel()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _wrap_send(
    send: Send, context: RequestContext, state: _ResponseState, *, oip: bool = False
) -> Send:
    """Add X-Request-ID to every response, and replace error bodies that are not envelopes
    (`oip`: not the protocol's error document)."""
    held: dict[str, Any] = {}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
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
            await _send_error_body(send, held["start"], held["body"], context, state, oip)
            return
        await send(message)

    return wrapped


async def _send_error_body(
    send: Send,
    start: Message,
    body: bytes,
    context: RequestContext,
    state: _ResponseState,
    oip: bool = False,
) -> None:
    status = start["status"]
    if oip and not state.body_too_large and is_oip_error(body):
        context.error_code = context.error_code or generic_error(status)[0]
    elif state.body_too_large and status != 413:
        status = state.status = 413
        context.error_code, body = generic_error(status)
    elif is_envelope(body):
        context.error_code = context.error_code or json.loads(body)["error"]["code"]
    elif is_oauth_error(body):  # the token endpoint answers in RFC 6749's shape
        context.error_code = json.loads(body)["error"]
    else:
        if body:
            logger.warning(
                "replaced a non-envelope %d body: %r",
                status,
                body[:500],
                extra={"request_id": context.request_id},
            )
        context.error_code, body = generic_error(status)
    if oip and not is_oip_error(body):
        body = oip_error_from_envelope(body)
    keep = [
        (k, v) for k, v in start["headers"] if k.lower() not in (b"content-length", b"content-type")
    ]
    keep += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    ERRORS.labels(code=context.error_code, status=str(status)).inc()
    await send({"type": "http.response.start", "status": status, "headers": keep})
    await send({"type": "http.response.body", "body": body})


def _run_after_response(context: RequestContext) -> None:
    for callback in context.after_response:
        try:
            callback()
        except Exception:
            logger.exception("after-response work failed", extra={"request_id": context.request_id})


# Labelled children, looked up once each: every label is bounded (route templates, methods,
# statuses), so these stay small, and a request skips prometheus_client's label handling.
_COUNTERS: dict[tuple[str, str, int], Any] = {}
_TIMERS: dict[tuple[str, str], Any] = {}


def _observe(route: str, method: str, status: int, seconds: float) -> None:
    counter = _COUNTERS.get((route, method, status))
    if counter is None:
        counter = HTTP_REQUESTS.labels(route=route, method=method, status=str(status))
        _COUNTERS[(route, method, status)] = counter
    timer = _TIMERS.get((route, method))
    if timer is None:
        timer = _TIMERS[(route, method)] = HTTP_DURATION.labels(route=route, method=method)
    counter.inc()
    timer.observe(seconds)


def _request_id(scope: Scope) -> str:
    candidate = Headers(scope=scope).get("x-request-id")
    if candidate is not None and REQUEST_ID.fullmatch(candidate):
        return candidate
    return new_request_id()


def _has_body(scope: Scope, declared: int | None) -> bool:
    """Whether the request announces a body (a length above 0, or chunked transfer)."""
    if declared is not None:
        return declared > 0
    return "transfer-encoding" in Headers(scope=scope)


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
        "model_role": context.model_role,
        "latency_ms": round(seconds * 1000, 3),
        "status": status,
        "error": context.error_code,
        "pid": os.getpid(),
    }
    level = logging.DEBUG if path in QUIET_PATHS and status < 400 else logging.INFO
    access_log.log(level, "request", extra=fields)
