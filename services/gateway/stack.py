"""The middleware chain, outermost first: request id, envelope and runtime -> auth -> limits."""

from typing import Any

from services.auth.middleware import AuthMiddleware
from services.gateway.middleware import GatewayMiddleware, RuntimeProvider
from services.ratelimit.middleware import RateLimitMiddleware
from services.settings import ServerSettings


def middleware_chain(
    runtime: RuntimeProvider,
    *,
    max_body_bytes: int,
    protect_metrics: bool,
    limits: ServerSettings | None = None,
    upload_limits: dict[str, int] | None = None,
) -> list[tuple[type[Any], dict[str, Any]]]:
    """The chain as (class, options) pairs, the way BentoML's add_asgi_middleware takes them."""
    gateway = {
        "max_body_bytes": max_body_bytes,
        "runtime": runtime,
        "limits": limits,
        "upload_limits": upload_limits,
    }
    return [
        (GatewayMiddleware, gateway),
        (AuthMiddleware, {"protect_metrics": protect_metrics}),
        (RateLimitMiddleware, {}),
    ]
