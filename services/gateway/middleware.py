"""The outermost ASGI middleware: request id, probes, body limit, error envelope, access log.

It wraps everything the gateway serves, BentoML's own routes included, so every error body a
client sees is the envelope: a non-envelope error from anywhere is replaced by a generic one
(its original text, which may carry internals, goes to the log only).
"""

import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from services.errors import AppError
from services.gateway.envelope import (
    RequestContext,
    current_request,
    error_document,
    generic_error,
    is_envelope,
    new_request_id,
    success,
)
from services.observability import ACCESS_LOGGER, ERRORS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ReadinessCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
QUIET_PATHS = ("/health", "/ready", "/livez", "/readyz", "/metrics")
access_log = logging.getLogger(ACCESS_LOGGER)
logger = logging.getLogger("services.gateway")


class BodyTooLarge(Exception):
    """The request body passed the configured limit while it was being read."""


class GatewayMiddleware:
    """See the module docstring; `readiness` answers `/ready`."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, readiness: ReadinessCheck | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.readiness = readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(request_id=_request_id(scope))
        token = current_request.set(context)
        started = time.perf_counter()
        state = _ResponseState()
        try:
            await self._handle(scope, receive, _wrap_send(send, context, state), state)
        finally:
            current_request.reset(token)
            _log(scope, context, state.status, time.perf_counter() - started)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, state: "_ResponseState"
    ) -> None:
        path = scope["path"]
        if path == "/health":
            await _json(send, 200, success({"status": "alive"}))
            return
        if path == "/ready":
            await self._ready(send)
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

    async def _ready(self, send: Send) -> None:
        if self.readiness is None:
            await _json(send, 200, success({"ready": True, "checks": {}}))
            return
        ready, checks = await self.readiness()
        if ready:
            await _json(send, 200, success({"ready": True, "checks": checks}))
        else:
            await send_error(
                send, 503, "not_ready", "The service is not ready.", {"checks": checks}
            )


class _ResponseState:
    status = 500
    started = False  # a response start was sent on to the server: too late for another one
    body_too_large = False


def _wrap_send(send: Send, context: RequestContext, state: _ResponseState) -> Send:
    """Add X-Request-ID to every response, and replace error bodies that are not envelopes."""
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
            await _send_error_body(send, held["start"], held["body"], context, state)
            return
        await send(message)

    return wrapped


async def _send_error_body(
    send: Send, start: Message, body: bytes, context: RequestContext, state: _ResponseState
) -> None:
    status = start["status"]
    if state.body_too_large and status != 413:
        status = state.status = 413
        context.error_code, body = generic_error(status)
    elif is_envelope(body):
        context.error_code = context.error_code or json.loads(body)["error"]["code"]
    else:
        if body:
            logger.warning(
                "replaced a non-envelope %d body: %r",
                status,
                body[:500],
                extra={"fields": {"request_id": context.request_id}},
            )
        context.error_code, body = generic_error(status)
    keep = [
        (k, v) for k, v in start["headers"] if k.lower() not in (b"content-length", b"content-type")
    ]
    keep += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    ERRORS.labels(code=context.error_code, status=str(status)).inc()
    await send({"type": "http.response.start", "status": status, "headers": keep})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A complete JSON response straight onto an ASGI `send`."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """The error envelope as a complete response, for middleware that answers by itself."""
    await send_json(send, status, error_document(code, message, details), headers)


async def _json(send: Send, status: int, document: dict[str, Any]) -> None:
    await send_json(send, status, json.dumps(document).encode("utf-8"))


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if REQUEST_ID.fullmatch(candidate):
                return candidate
    return new_request_id()


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _log(scope: Scope, context: RequestContext, status: int, seconds: float) -> None:
    path = scope.get("path", "")
    fields = {
        "request_id": context.request_id,
        "user_id": context.user_id,
        "method": scope.get("method"),
        "endpoint": path,
        "model_version": context.model_version,
        "latency_ms": round(seconds * 1000, 3),
        "status": status,
        "error": context.error_code,
        "pid": os.getpid(),
    }
    level = logging.DEBUG if path in QUIET_PATHS and status < 400 else logging.INFO
    access_log.log(level, "request", extra={"fields": fields})
