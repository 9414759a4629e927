"""Authentication for /api/v1 (and /metrics when protected), as ASGI middleware.

It answers 401 itself, in the envelope with `WWW-Authenticate`; scope checks (403) happen in
the routes, where each route states the scope it needs. Probes and BentoML's own endpoints
stay open, and runners are internal: `depends` calls never pass through here.
"""

import logging
from collections.abc import Callable
from typing import Any

from services.auth.authenticator import AuthenticationFailed, Authenticator, Principal
from services.auth.scopes import ADMIN, grants
from services.gateway.envelope import current_request
from services.gateway.middleware import ASGIApp, Receive, Scope, Send, send_error

logger = logging.getLogger("services.auth")
API_PREFIX = "/api/v1"
OPEN_PATHS = frozenset(
    {f"{API_PREFIX}/auth/token", f"{API_PREFIX}/docs", f"{API_PREFIX}/openapi.json"}
)
CHALLENGE = 'Bearer realm="model-packaging"'


def principal() -> Principal | None:
    """The authenticated caller of the current request, if any."""
    context = current_request.get()
    found = context.extra.get("principal") if context else None
    return found if isinstance(found, Principal) else None


class AuthMiddleware:
    """`runtime` returns the gateway runtime (None while starting)."""

    def __init__(
        self, app: ASGIApp, *, runtime: Callable[[], Any], protect_metrics: bool = False
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.protect_metrics = protect_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        protected = (path.startswith(f"{API_PREFIX}/") or path == API_PREFIX) and (
            path not in OPEN_PATHS
        )
        metrics = self.protect_metrics and path == "/metrics"
        if scope["type"] != "http" or not (protected or metrics):
            await self.app(scope, receive, send)
            return
        runtime = self.runtime()
        if runtime is None:
            await send_error(send, 503, "service_unavailable", "The service is starting.")
            return
        if not runtime.auth_enabled:
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator = runtime.authenticator
        credential = _credential(scope)
        if credential is None:
            await _unauthorized(
                send, "Authentication required: send a bearer token or API key.", error=None
            )
            return
        try:
            caller = await authenticator.authenticate(credential)
        except AuthenticationFailed as exc:
            logger.info("authentication failed: %s", exc)
            await _unauthorized(
                send, "The credential is invalid, expired or revoked.", error="invalid_token"
            )
            return
        context = current_request.get()
        if context is not None:
            context.user_id = caller.subject
            context.extra["principal"] = caller
        if metrics and not grants(caller.scopes, ADMIN):
            await send_error(send, 403, "forbidden", "The admin scope is required.")
            return
        await self.app(scope, receive, send)


def _credential(scope: Scope) -> str | None:
    headers = {key.lower(): value for key, value in scope.get("headers", [])}
    authorization = headers.get(b"authorization")
    if authorization is not None:
        kind, _, value = authorization.decode("latin-1").partition(" ")
        return value.strip() or None if kind.lower() == "bearer" else None
    api_key = headers.get(b"x-api-key")
    return api_key.decode("latin-1").strip() or None if api_key is not None else None


async def _unauthorized(send: Send, message: str, *, error: str | None) -> None:
    challenge = CHALLENGE + (f', error="{error}"' if error else "")
    await send_error(
        send, 401, "unauthorized", message, headers=[(b"www-authenticate", challenge.encode())]
    )
