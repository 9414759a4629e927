"""Rate limiting as ASGI middleware, after authentication: per principal and route class."""

import math
from typing import Protocol

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.auth.middleware import API_PREFIX, PREDICT_PATH
from services.auth.principal import principal_of
from services.http.asgi import retry_after, send_error
from services.http.context import runtime_in
from services.http.oip import OIP_PREFIX, is_oip, is_oip_inference
from services.observability.metrics import RATE_LIMITED
from services.ratelimit.gcra import Decision
from services.ratelimit.limiter import RateLimiter
from services.redis_client import RedisUnavailable

TOKEN_PATH = f"{API_PREFIX}/auth/token"
ADMIN_PREFIXES = (f"{API_PREFIX}/users", f"{API_PREFIX}/api-keys")


class LimitRuntime(Protocol):
    """What this middleware needs from the service runtime."""

    @property
    def limiter(self) -> RateLimiter | None: ...


def route_class(method: str, path: str) -> str:
    """inference (POST /predictions, /predict or /v2/.../infer: the aggressive one), token,
    read, or write."""
    if path == TOKEN_PATH:
        return "token"
    if method == "POST" and path in (f"{API_PREFIX}/predictions", PREDICT_PATH):
        return "inference"
    if is_oip_inference(method, path):
        return "inference"
    if method in ("GET", "HEAD") and not path.startswith(ADMIN_PREFIXES):
        return "read"
    return "write"


def is_limited(path: str) -> bool:
    """/api/v1 but its docs, /predict, and /v2/models (not the protocol's health or docs)."""
    if is_oip(path):
        return path.startswith(f"{OIP_PREFIX}/models/")
    if path == PREDICT_PATH:
        return True
    return (
        path.startswith(API_PREFIX)
        and not path.endswith(("/docs", "/openapi.json", "/oauth2-redirect"))
        and not path.startswith(f"{API_PREFIX}/docs/")
    )


class RateLimitMiddleware:
    """Limits what `is_limited` says; a runtime without a limiter means limits are off."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        runtime: LimitRuntime | None = runtime_in(scope) if scope["type"] == "http" else None
        limiter = runtime.limiter if runtime is not None else None
        if limiter is None or not is_limited(path):
            await self.app(scope, receive, send)
            return
        kind = route_class(scope.get("method", "GET"), path)
        caller = principal_of(scope)
        identity = caller.subject if caller and kind != "token" else _client(scope)
        try:
            decision = await limiter.hit(kind, identity)
        except RedisUnavailable:
            await send_error(
                send,
                503,
                "service_unavailable",
                "Rate limits cannot be checked right now.",
                headers=retry_after(limiter.guard.breaker.retry_after_s()),
            )
            return
        headers = _headers(decision)
        if not decision.allowed:
            RATE_LIMITED.labels(route_class=kind).inc()
            retry = str(max(1, math.ceil(decision.retry_after_s))).encode()
            await send_error(
                send,
                429,
                "rate_limited",
                f"Too many requests ({kind}); slow down.",
                headers=[*headers, (b"retry-after", retry)],
            )
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in headers:
                    response_headers.append(name.decode(), value.decode())
            await send(message)

        await self.app(scope, receive, with_headers)


def _headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [
        (b"ratelimit-limit", str(decision.limit).encode()),
        (b"ratelimit-remaining", str(max(0, decision.remaining)).encode()),
        (b"ratelimit-reset", str(math.ceil(decision.reset_s)).encode()),
    ]


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"ip:{client[0]}" if client else "ip:unknown"
