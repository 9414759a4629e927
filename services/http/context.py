"""What one request learns on its way through the layers, for the response meta and the log.

The caller's identity travels the Starlette way, in `scope["user"]` and `scope["auth"]` (set by
the auth middleware); this context carries the rest: the request id, the model version that
served it and the error code it ended with.
"""

import uuid
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RequestContext:
    """Per-request facts the envelope's meta and the access log report."""

    request_id: str
    model_version: str | None = None
    error_code: str | None = None
    model_role: str | None = None  # how the deployment chose the version (production, canary...)
    # Work that must not delay the response: run once it has been sent (e.g. shadow traffic).
    after_response: list[Callable[[], object]] = field(default_factory=list)


current_request: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)


def new_request_id() -> str:
    """A fresh request id: 32 hex digits."""
    return uuid.uuid4().hex


def note_model_version(tag: str, role: str | None = None) -> None:
    """Record the model version that served the current request, and how the deployment chose
    it (meta and access log)."""
    context = current_request.get()
    if context is not None:
        context.model_version = tag
        context.model_role = role


def after_response(callback: Callable[[], object]) -> None:
    """Call `callback` once the current request's response has been sent (at once outside a
    request): for work the caller must not wait for."""
    context = current_request.get()
    if context is None:
        callback()
    else:
        context.after_response.append(callback)


def scope_state(scope: MutableMapping[str, Any]) -> dict[str, Any]:
    """The request's `state` (Starlette's `request.state`), created if absent."""
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def runtime_in(scope: MutableMapping[str, Any]) -> Any:
    """The service runtime the outermost middleware put into this request's state (None while
    the service starts). Each layer reads it through its own Protocol of what it needs."""
    return scope_state(scope).get(RUNTIME_KEY)


RUNTIME_KEY = "runtime"
