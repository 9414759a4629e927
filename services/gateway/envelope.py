"""The one response envelope: `{data, meta}` for success, `{error: {code, message, details}}`."""

import json
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATUS_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "Authentication is required."),
    403: ("forbidden", "This credential may not do that."),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "Method not allowed."),
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


@dataclass
class RequestContext:
    """What one request's handlers learn, for the response meta and the access log."""

    request_id: str
    user_id: str | None = None
    model_version: str | None = None
    error_code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


current_request: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def timestamp() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def iso_utc(moment: datetime) -> str:
    """UTC ISO 8601; SQLite hands back naive datetimes, which were stored as UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


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
    return {"data": data, "meta": meta(**meta_extra)}


def error_document(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
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
