"""The middleware chain, outermost first: request id and envelope -> auth -> rate limit."""

from collections.abc import Awaitable, Callable
from typing import Any

from services.auth.middleware import AuthMiddleware
from services.gateway.middleware import ASGIApp, GatewayMiddleware
from services.gateway.ratelimit import RateLimitMiddleware
from services.gateway.runtime import GatewayRuntime

RuntimeProvider = Callable[[], GatewayRuntime | None]


def middleware_chain(
    runtime: RuntimeProvider, *, max_body_bytes: int, protect_metrics: bool
) -> list[tuple[type[Any], dict[str, Any]]]:
    async def readiness() -> tuple[bool, dict[str, Any]]:
        current = runtime()
        if current is None:
            return False, {"gateway": "starting"}
        return await current.readiness()

    ready: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]] = readiness
    return [
        (GatewayMiddleware, {"max_body_bytes": max_body_bytes, "readiness": ready}),
        (AuthMiddleware, {"runtime": runtime, "protect_metrics": protect_metrics}),
        (RateLimitMiddleware, {"runtime": runtime}),
    ]


def wrap(app: ASGIApp, chain: list[tuple[type[Any], dict[str, Any]]]) -> ASGIApp:
    """Apply the chain to `app` the way Starlette does: the first entry ends up outermost."""
    for middleware, options in reversed(chain):
        app = middleware(app, **options)
    return app
