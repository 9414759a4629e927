"""Rate limiting as ASGI middleware, after authentication: per principal and route class."""

import math
from collections.abc import Callable
from typing import Any

from services.auth.middleware import API_PREFIX, principal
from services.gateway.middleware import ASGIApp, Message, Receive, Scope, Send, send_error
from services.limits import RATE_LIMITED, Decision, RateLimiter, RedisUnavailable

TOKEN_PATH = f"{API_PREFIX}/auth/token"
ADMIN_PREFIXES = (f"{API_PREFIX}/users", f"{API_PREFIX}/api-keys")


def route_class(method: str, path: str) -> str:
    """inference (POST /predictions, the aggressive one), token, read, or write."""
    if path == TOKEN_PATH:
        return "token"
    if method == "POST" and path == f"{API_PREFIX}/predictions":
        return "inference"
    if method in ("GET", "HEAD") and not path.startswith(ADMIN_PREFIXES):
        return "read"
    return "write"


class RateLimitMiddleware:
    """`runtime` returns the gateway runtime (None while starting); no limiter, no limits."""

    def __init__(self, app: ASGIApp, *, runtime: Callable[[], Any]) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        runtime = self.runtime() if scope["type"] == "http" else None
        limiter: RateLimiter | None = runtime.limiter if runtime is not None else None
        if (
            limiter is None
            or not path.startswith(API_PREFIX)
            or path.endswith(("/docs", "/openapi.json"))
        ):
            await self.app(scope, receive, send)
            return
        kind = route_class(scope.get("method", "GET"), path)
        caller = principal()
        identity = caller.subject if caller and kind != "token" else _client(scope)
        try:
            decision = await limiter.hit(kind, identity)
        except RedisUnavailable:
            await send_error(
                send, 503, "service_unavailable", "Rate limits cannot be checked right now."
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
                message["headers"] = [*message.get("headers", []), *headers]
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
