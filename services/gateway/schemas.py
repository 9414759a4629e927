"""Request and response schemas of /api/v1 (the committed OpenAPI document is built from them).

Responses are `Envelope[T]` / `PageEnvelope[T]` of the resource models below; routes return
them, so `response_model` validates what is sent, not only what the docs say.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from services.gateway.fields import Text, storable
from services.http.envelope import ErrorEnvelope, as_utc

MODEL_REF = r"^[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9._-]+)?$"
SCOPE_PATTERN = r"^(predictions:write|predictions:read|models:read|admin)$"
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$"
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
Scope = Annotated[str, Field(pattern=SCOPE_PATTERN), AfterValidator(storable)]


FEATURE_ROWS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "additionalProperties": {
            "anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "null"}]
        },
    },
}


class PredictionCreate(BaseModel):
    """Rows to predict with one model."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: Text = Field(
        pattern=MODEL_REF,
        max_length=200,
        description="`name` or `name:version`",
        examples=["cancer-rf"],
    )
    # Checked against the model's feature schema by services.pipeline.validation (422 naming
    # each row and field); documented as typed rows, refined per served model when served.
    inputs: Annotated[list[Any], WithJsonSchema(FEATURE_ROWS)] = Field(
        description="Rows, each an object of feature name -> value, in any key order.",
    )


class ModelIdentity(BaseModel):
    name: str
    version: str


class PredictionOutputs(BaseModel):
    label: int | str
    score: float
    probabilities: dict[str, float]
    out_of_range: list[str] = Field(
        default_factory=list, description="Features accepted outside their training range."
    )


class PredictionPublic(BaseModel):
    id: uuid.UUID
    outputs: PredictionOutputs


class PredictionsCreated(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    predictions: list[PredictionPublic]
    model: ModelIdentity


class LabelUpdate(BaseModel):
    """Ground truth for a prediction, one of its model's classes."""

    model_config = ConfigDict(extra="forbid")

    label: int | Text


class PredictionRecord(BaseModel):
    """One logged prediction."""

    model_config = ConfigDict(protected_namespaces=())

    id: uuid.UUID
    request_id: str
    model: ModelIdentity
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    latency_ms: float
    principal: str | None
    label: int | str | None
    labelled_at: UtcDatetime | None
    created_at: UtcDatetime
    role: str = Field(description="How the version was chosen: production, canary, pinned, shadow")
    shadow_of: uuid.UUID | None = Field(
        default=None, description="For a shadow row: the production prediction it copied."
    )

    @classmethod
    def of(cls, row: Any) -> Self:
        """From a `db.models.Prediction` row."""
        return cls.model_validate(
            {
                **{name: getattr(row, name) for name in cls.model_fields if name != "model"},
                "model": {"name": row.model_name, "version": row.model_version},
            }
        )


class ModelPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: str
    tag: str
    framework: str
    stage: str
    created_at: str
    feature_schema: dict[str, Any]
    output_schema: dict[str, Any]
    metrics: dict[str, float]


ERROR_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Unsupported media type: send JSON with Content-Type: application/json",
    422: "Validation error",
    429: "Rate limited",
    500: "Server error",
    503: "Service unavailable",
    504: "Inference timeout",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, each in the envelope."""
    return {
        status: {"model": ErrorEnvelope, "description": ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


# What every route may answer; routes add what only they can (409). A route that takes a JSON
# body also answers 415: services.gateway.app documents that for every such route.
ERROR_RESPONSES = error_responses(400, 401, 403, 404, 413, 422, 429, 500, 503, 504)


class OAuthErrorResponse(BaseModel):
    """An error of the token endpoint, in RFC 6749 section 5.2's shape (not the envelope)."""

    error: Literal[
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    ]
    error_description: str


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Text = Field(pattern=USERNAME_PATTERN)
    password: Text = Field(min_length=12, max_length=256)
    scopes: list[Scope] = Field(min_length=1)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Text | None = Field(default=None, min_length=12, max_length=256)
    scopes: list[Scope] | None = Field(default=None, min_length=1)
    is_active: bool | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    scopes: list[str]
    is_active: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=100)
    user_id: uuid.UUID | None = Field(default=None, description="Owner; default: the caller.")
    scopes: list[Scope] | None = Field(
        default=None, min_length=1, description="Default: the owner's scopes."
    )


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    user_id: uuid.UUID
    prefix: str
    scopes: list[str]
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself: shown this once, never stored.")


class JobProgress(BaseModel):
    rows_total: int | None = Field(description="Rows in the file (a CSV's once it is read).")
    rows_done: int = Field(description="Rows scored or failed so far.")
    rows_failed: int = Field(description="Rows that failed their checks (see `error` per row).")
    chunks_done: int
    fraction: float | None = Field(description="rows_done / rows_total, when the total is known.")


class JobRecord(BaseModel):
    """A batch-scoring job: its file, model version, status and progress."""

    model_config = ConfigDict(protected_namespaces=())

    id: uuid.UUID
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    model: ModelIdentity
    source: str = Field(description="`upload`, or the referenced file")
    format: Literal["parquet", "csv"]
    id_column: str | None
    ignored_columns: list[str] = Field(description="Columns of the file that are not features.")
    log_rows: bool = Field(description="Scored rows also go into the prediction log.")
    progress: JobProgress
    error: str | None = Field(description="Why the job failed.")
    attempts: int = Field(description="How many times a worker took it up (a restart resumes).")
    result: str | None = Field(description="Where to download the result, once it succeeded.")
    principal: str | None
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    updated_at: UtcDatetime
    finished_at: UtcDatetime | None

    @classmethod
    def of(cls, job: Any, *, result_url: str) -> Self:
        """From a `db.models.ScoringJob` row."""
        total = job.rows_total
        return cls.model_validate(
            {
                "id": job.id,
                "status": job.status,
                "model": {"name": job.model_name, "version": job.model_version},
                "source": job.source,
                "format": job.input_format,
                "id_column": job.id_column,
                "ignored_columns": job.ignored_columns,
                "log_rows": job.log_rows,
                "progress": {
                    "rows_total": total,
                    "rows_done": job.rows_done,
                    "rows_failed": job.rows_failed,
                    "chunks_done": job.chunks_done,
                    "fraction": round(job.rows_done / total, 4) if total else None,
                },
                "error": job.error,
                "attempts": job.attempts,
                "result": result_url if job.status == "succeeded" else None,
                "principal": job.principal,
                "created_at": job.created_at,
                "started_at": job.started_at,
                "updated_at": job.updated_at,
                "finished_at": job.finished_at,
            }
        )
