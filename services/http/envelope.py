"""The one response envelope: `{data, meta}` for success, `{error: {code, message, details}}`.

The error document is built here and only here; the typed `Envelope[T]` / `PageEnvelope[T]`
models describe the same shapes to FastAPI and the OpenAPI document.
"""

import json
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from services.http.context import current_request

T = TypeVar("T")

STATUS_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "Authentication is required."),
    403: ("forbidden", "This credential may not do that."),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "Method not allowed."),
    408: ("request_timeout", "The request was not received in time."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Unsupported content type."),
    422: ("validation_error", "The request failed validation."),
    429: ("rate_limited", "Too many requests."),
    500: ("internal_error", "Internal server error."),
    502: ("bad_gateway", "An internal service failed."),
    503: ("service_unavailable", "The service is not available right now."),
    504: ("gateway_timeout", "An internal call timed out."),
}


def timestamp() -> str:
    """Now, in UTC ISO 8601 with a Z."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def as_utc(moment: datetime) -> datetime:
    """`moment` with its timezone; a naive one (SQLite) was stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def meta(**extra: Any) -> dict[str, Any]:
    """Response meta: timestamp, request id and model version, plus pagination fields."""
    context = current_request.get()
    document = {
        "timestamp": timestamp(),
        "request_id": context.request_id if context else None,
        "model_version": context.model_version if context else None,
    }
    document.update(extra)
    return document


def success(data: Any, **meta_extra: Any) -> dict[str, Any]:
    """The success envelope around `data`."""
    return {"data": data, "meta": meta(**meta_extra)}


def error_document(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    """The error envelope, encoded."""
    return json.dumps(
        {"error": {"code": code, "message": message, "details": details or {}}}, default=str
    ).encode("utf-8")


def generic_error(status: int) -> tuple[str, bytes]:
    """The code and envelope for a status whose original body we do not pass on."""
    code, message = STATUS_CODES.get(
        status, ("internal_error" if status >= 500 else "error", "The request failed.")
    )
    return code, error_document(code, message)


def is_envelope(body: bytes) -> bool:
    """Whether `body` is already our error envelope."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    error = document.get("error") if isinstance(document, dict) else None
    return isinstance(error, dict) and {"code", "message", "details"} <= set(error)


OAUTH_ERROR_CODES = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)


def is_oauth_error(body: bytes) -> bool:
    """Whether `body` is an RFC 6749 section 5.2 error (the token endpoint's own shape)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return (
        isinstance(document, dict)
        and set(document) == {"error", "error_description"}
        and document["error"] in OAUTH_ERROR_CODES
        and isinstance(document["error_description"], str)
    )


class Meta(BaseModel):
    """What every response's meta carries."""

    model_config = ConfigDict(protected_namespaces=())

    timestamp: str
    request_id: str
    model_version: str | None = None


class PageMeta(Meta):
    """Meta of a paged list: `?page&limit` -> total items and pages."""

    total: int
    pages: int
    page: int
    limit: int


class Envelope(BaseModel, Generic[T]):
    """A success response: one resource."""

    data: T
    meta: Meta


class PageEnvelope(BaseModel, Generic[T]):
    """A success response: one page of a list."""

    data: list[T]
    meta: PageMeta


class ErrorBody(BaseModel):
    """What went wrong: a stable code, a message for people, details for programs."""

    code: str = Field(examples=["validation_error"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorEnvelope(BaseModel):
    """An error response."""

    error: ErrorBody
