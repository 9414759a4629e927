"""The one error hierarchy of the service; `services.http.envelope` turns each into the error
envelope, and every front door reports them the same way.

AppError (500 internal_error)
├── BadRequest (400 bad_request)
│   ├── InvalidRequest (400 invalid_request)        OAuth2 token endpoint, RFC 6749 5.2
│   ├── InvalidGrant (400 invalid_grant)
│   ├── InvalidScope (400 invalid_scope)
│   └── UnsupportedGrantType (400 unsupported_grant_type)
├── Unauthorized (401 unauthorized)
├── Forbidden (403 forbidden)
├── NotFound (404 not_found)
│   └── ModelNotFound (404 model_not_found)
├── Conflict (409 conflict)
│   ├── VersionNotLoaded (409 version_not_loaded)   a deployment names a version not served
│   ├── IncompatibleVersion (409 incompatible_version)   its features or classes differ
│   └── IdempotencyKeyReused (409 idempotency_key_reused)
├── UnsupportedMediaType (415 unsupported_media_type)
├── ValidationFailed (422 validation_error)
├── InvalidFeatureSchema (500 invalid_feature_schema)
├── ArtifactMismatch (500 artifact_mismatch)
├── RunnerError (502 runner_error)
├── ServiceUnavailable (503 service_unavailable)
├── ModelNotLoaded (503 model_not_loaded)
├── DatabaseUnavailable (503 database_unavailable)
├── SchemaBehind (503 schema_behind)
└── InferenceTimeout (504 inference_timeout)
"""

from typing import Any, ClassVar


class AppError(Exception):
    """Base error: carries its HTTP status, a stable machine code and a client-safe message."""

    status_code: ClassVar[int] = 500
    error_code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}
        # Sent as Retry-After: set where the service knows when trying again makes sense.
        self.retry_after_s = retry_after_s


class BadRequest(AppError):
    status_code = 400
    error_code = "bad_request"


class InvalidRequest(BadRequest):
    """RFC 6749 5.2: a malformed token request (missing or repeated parameter, not a form)."""

    error_code = "invalid_request"


class InvalidGrant(BadRequest):
    """RFC 6749 5.2: bad credentials in a password grant."""

    error_code = "invalid_grant"


class InvalidScope(BadRequest):
    """RFC 6749 5.2: the requested scope exceeds what the user holds."""

    error_code = "invalid_scope"


class UnsupportedGrantType(BadRequest):
    """RFC 6749 5.2: only the password grant is supported."""

    error_code = "unsupported_grant_type"


class Unauthorized(AppError):
    status_code = 401
    error_code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    error_code = "forbidden"


class NotFound(AppError):
    status_code = 404
    error_code = "not_found"


class ModelNotFound(NotFound):
    error_code = "model_not_found"


class Conflict(AppError):
    status_code = 409
    error_code = "conflict"


class VersionNotLoaded(Conflict):
    """A deployment names a version this service does not load; details say how to load it."""

    error_code = "version_not_loaded"


class IncompatibleVersion(Conflict):
    """A deployment pairs versions whose features or classes differ; details list how."""

    error_code = "incompatible_version"


class UnsupportedMediaType(AppError):
    """A body in a content type the route does not take."""

    status_code = 415
    error_code = "unsupported_media_type"


class IdempotencyKeyReused(Conflict):
    """An Idempotency-Key came back with a different request body."""

    error_code = "idempotency_key_reused"


class ValidationFailed(AppError):
    status_code = 422
    error_code = "validation_error"


class InvalidFeatureSchema(AppError):
    """A feature schema is malformed or does not fit its model."""

    error_code = "invalid_feature_schema"


class ArtifactMismatch(AppError):
    """An artifact's digest or golden outputs differ from what its export recorded."""

    error_code = "artifact_mismatch"


class RunnerError(AppError):
    """A runner answered with a failure."""

    status_code = 502
    error_code = "runner_error"


class ServiceUnavailable(AppError):
    status_code = 503
    error_code = "service_unavailable"


class ModelNotLoaded(AppError):
    """A model could not be loaded, or is not loaded yet."""

    status_code = 503
    error_code = "model_not_loaded"


class DatabaseUnavailable(AppError):
    """A prediction could not be confirmed as stored (retryable)."""

    status_code = 503
    error_code = "database_unavailable"


class SchemaBehind(AppError):
    """The database schema is older than the code; the service refuses to start."""

    status_code = 503
    error_code = "schema_behind"


class InferenceTimeout(AppError):
    status_code = 504
    error_code = "inference_timeout"
