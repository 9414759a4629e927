"""The outermost ASGI middleware: request id, probes, body limit, error envelope, access log.

It wraps everything the gateway serves, BentoML's own routes included, so every error body a
client sees is the envelope: a non-envelope error from anywhere is replaced by a generic one
(its original text, which may carry internals, goes to the log only). Under /v2 the same holds
in the Open Inference Protocol's shape, `{"error": "..."}`, which its clients read.
"""

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
from services.http.asgi import send_document, send_error
from services.http.context import (
    RUNTIME_KEY,
    RequestContext,
    current_request,
    new_request_id,
    scope_state,
)
from services.http.envelope import generic_error, is_envelope, is_oauth_error, success
from services.http.oip import is_oip, is_oip_error, oip_error_from_envelope
from services.observability.logs import ACCESS_LOGGER
from services.observability.metrics import ERRORS

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
QUIET_PATHS = ("/health", "/ready", "/livez", "/readyz", "/metrics")
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
        self, app: ASGIApp, *, max_body_bytes: int, runtime: RuntimeProvider | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.runtime is not None:
            scope_state(scope)[RUNTIME_KEY] = self.runtime()
        context = RequestContext(request_id=_request_id(scope))
        token = current_request.set(context)
        started = time.perf_counter()
        state = _ResponseState()
        try:
            wrapped = _wrap_send(send, context, state, oip=is_oip(scope["path"]))
            await self._handle(scope, receive, wrapped, state)
        finally:
            current_request.reset(token)
            _log(scope, context, state.status, time.perf_counter() - started)
            _run_after_response(context)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, state: "_ResponseState"
    ) -> None:
        path = scope["path"]
        if path == "/health":
            await send_document(send, 200, success({"status": "alive"}))
            return
        if path == "/ready":
            await self._ready(scope, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await send_error(
                send, 413, "payload_too_large", f"request body exceeds {self.max_body_bytes} bytes"
            )
            return
        try:
            await self.app(scope, self._limited(receive, state), send)
        except Exception as exc:
            if state.started:  # too late for another response; the client sees a cut body
                logger.exception("error after the response started on %s", path)
                return
            if isinstance(exc, BodyTooLarge):
                await send_error(
                    send,
                    413,
                    "payload_too_large",
                    f"request body exceeds {self.max_body_bytes} bytes",
                )
            elif isinstance(exc, AppError):
                await send_error(send, exc.status_code, exc.error_code, exc.message, exc.details)
            else:
                logger.exception("unhandled error on %s %s", scope.get("method"), path)
                await send_error(send, 500, "internal_error", "Internal server error.")

    def _limited(self, receive: Receive, state: "_ResponseState") -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
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
        "model_role": context.model_role,
        "latency_ms": round(seconds * 1000, 3),
        "status": status,
        "error": context.error_code,
        "pid": os.getpid(),
    }
    level = logging.DEBUG if path in QUIET_PATHS and status < 400 else logging.INFO
    access_log.log(level, "request", extra=fields)
