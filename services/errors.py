"""The one error hierarchy of the service; the gateway turns each into the error envelope.

AppError (500 internal_error)
├── BadRequest (400 bad_request)
├── Unauthorized (401 unauthorized)
├── Forbidden (403 forbidden)
├── Conflict (409 conflict)
├── NotFound (404 not_found)
│   └── ModelNotFound (404 model_not_found)
├── ValidationFailed (422 validation_error)
├── ModelNotLoaded (503 model_not_loaded)
├── ServiceUnavailable (503 service_unavailable)
├── InvalidFeatureSchema (500 invalid_feature_schema)
├── ArtifactMismatch (500 artifact_mismatch)
└── InferenceTimeout (504 inference_timeout)
"""

from typing import Any, ClassVar


class AppError(Exception):
    """Base error: carries its HTTP status, a stable machine code and a client-safe message."""

    status_code: ClassVar[int] = 500
    error_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class BadRequest(AppError):
    status_code = 400
    error_code = "bad_request"


class Unauthorized(AppError):
    status_code = 401
    error_code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    error_code = "forbidden"


class Conflict(AppError):
    status_code = 409
    error_code = "conflict"


class NotFound(AppError):
    status_code = 404
    error_code = "not_found"


class ModelNotFound(NotFound):
    error_code = "model_not_found"


class ValidationFailed(AppError):
    status_code = 422
    error_code = "validation_error"


class ModelNotLoaded(AppError):
    """A model could not be loaded, or is not loaded yet."""

    status_code = 503
    error_code = "model_not_loaded"


class InvalidFeatureSchema(AppError):
    """A feature schema is malformed or does not fit its model."""

    error_code = "invalid_feature_schema"


class ArtifactMismatch(AppError):
    """An artifact's digest or golden outputs differ from what its export recorded."""

    error_code = "artifact_mismatch"


class ServiceUnavailable(AppError):
    status_code = 503
    error_code = "service_unavailable"


class InferenceTimeout(AppError):
    status_code = 504
    error_code = "inference_timeout"
