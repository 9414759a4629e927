"""What one request learns on its way through the layers, for the response meta and the log.

The caller's identity travels the Starlette way, in `scope["user"]` and `scope["auth"]` (set by
the auth middleware); this context carries the rest: the request id, the model version that
served it and the error code it ended with.
"""

import uuid
from collections.abc import MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass
class RequestContext:
    """Per-request facts the envelope's meta and the access log report."""

    request_id: str
    model_version: str | None = None
    error_code: str | None = None


current_request: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)


def new_request_id() -> str:
    """A fresh request id: 32 hex digits."""
    return uuid.uuid4().hex


def note_model_version(tag: str) -> None:
    """Record the model version that served the current request (meta and access log)."""
    context = current_request.get()
    if context is not None:
        context.model_version = tag


def scope_state(scope: MutableMapping[str, Any]) -> dict[str, Any]:
    """The request's `state` (Starlette's `request.state`), created if absent."""
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def runtime_in(scope: MutableMapping[str, Any]) -> Any:
    """The service runtime the outermost middleware put into this request's state (None while
    the service starts). Each layer reads it through its own Protocol of what it needs."""
    return scope_state(scope).get(RUNTIME_KEY)


RUNTIME_KEY = "runtime"
