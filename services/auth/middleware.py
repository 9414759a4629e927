"""Authentication for /api/v1, /v2/models, /predict (and /metrics when protected), as ASGI
middleware.

It answers 401 itself, in the envelope with `WWW-Authenticate`; scope checks (403) happen where
each front door states the scope it needs. The caller goes into `scope["user"]`/`scope["auth"]`
as Starlette's AuthenticationMiddleware would put it. Probes and BentoML's own endpoints stay
open, and runners are internal: `depends` calls never pass through here.
"""

import logging
from typing import Protocol

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.auth.authenticator import AuthenticationFailed, Authenticator
from services.auth.epochs import AccountsUnavailable
from services.auth.principal import authenticate_scope
from services.auth.scopes import ADMIN
from services.http.asgi import send_error
from services.http.context import runtime_in
from services.http.oip import OIP_OPEN_PATHS, is_oip

logger = logging.getLogger("services.auth")
API_PREFIX = "/api/v1"
PREDICT_PATH = "/predict"  # the Gateway's @bentoml.api, for BentoML's HTTP clients
DOCS_PATH = f"{API_PREFIX}/docs"
OPEN_PATHS = frozenset({f"{API_PREFIX}/auth/token", DOCS_PATH, f"{API_PREFIX}/openapi.json"})
CHALLENGE = 'Bearer realm="model-packaging"'


class AuthRuntime(Protocol):
    """What this middleware needs from the service runtime."""

    @property
    def authenticator(self) -> Authenticator | None: ...


def is_protected(path: str) -> bool:
    """Whether `path` needs a credential: every /api/v1 route but the token route and docs
    (with their assets), every /v2 route but the protocol's health, server metadata and docs,
    and /predict."""
    if is_oip(path):
        return path not in OIP_OPEN_PATHS
    if path == PREDICT_PATH:
        return True
    return (
        (path.startswith(f"{API_PREFIX}/") or path == API_PREFIX)
        and path not in OPEN_PATHS
        and not path.startswith(f"{DOCS_PATH}/")
    )


class AuthMiddleware:
    """Authenticates protected paths; a runtime without an authenticator means auth is off."""

    def __init__(self, app: ASGIApp, *, protect_metrics: bool = False) -> None:
        self.app = app
        self.protect_metrics = protect_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        metrics = self.protect_metrics and path == "/metrics"
        if scope["type"] != "http" or not (metrics or is_protected(path)):
            await self.app(scope, receive, send)
            return
        runtime: AuthRuntime | None = runtime_in(scope)
        if runtime is None:
            await send_error(send, 503, "service_unavailable", "The service is starting.")
            return
        authenticator = runtime.authenticator
        if authenticator is None:
            authenticate_scope(scope, None)
            await self.app(scope, receive, send)
            return
        credential = _credential(Headers(scope=scope))
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
        except AccountsUnavailable:
            await send_error(
                send,
                503,
                "database_unavailable",
                "The credential cannot be checked right now; retry shortly.",
                headers=[(b"retry-after", b"1")],
            )
            return
        authenticate_scope(scope, caller)
        if metrics and not caller.may(ADMIN):
            await send_error(send, 403, "forbidden", "The admin scope is required.")
            return
        await self.app(scope, receive, send)


def _credential(headers: Headers) -> str | None:
    authorization = headers.get("authorization")
    if authorization is not None:
        kind, _, value = authorization.partition(" ")
        return value.strip() or None if kind.lower() == "bearer" else None
    api_key = headers.get("x-api-key")
    return api_key.strip() or None if api_key is not None else None


async def _unauthorized(send: Send, message: str, *, error: str | None) -> None:
    challenge = CHALLENGE + (f', error="{error}"' if error else "")
    await send_error(
        send, 401, "unauthorized", message, headers=[(b"www-authenticate", challenge.encode())]
    )
