"""Request and response schemas of /api/v1 (the committed OpenAPI document is built from them)."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

MODEL_REF = r"^[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9._-]+)?$"


class Meta(BaseModel):
    timestamp: str
    request_id: str
    model_version: str | None = None


class PageMeta(Meta):
    total: int
    pages: int
    page: int
    limit: int


class ErrorBody(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class PredictionCreate(BaseModel):
    """Rows to predict with one model."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(
        pattern=MODEL_REF,
        max_length=200,
        description="`name` or `name:version`",
        examples=["cancer-rf"],
    )
    inputs: list[Any] = Field(
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
    id: str
    outputs: PredictionOutputs


class PredictionsCreated(BaseModel):
    predictions: list[PredictionPublic]
    model: ModelIdentity


class PredictionsCreatedEnvelope(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    data: PredictionsCreated
    meta: Meta


class LabelUpdate(BaseModel):
    """Ground truth for a prediction, one of its model's classes."""

    model_config = ConfigDict(extra="forbid")

    label: int | str


class PredictionRecord(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: str
    request_id: str
    model: ModelIdentity
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    latency_ms: float
    principal: str | None
    label: int | str | None
    labelled_at: str | None
    created_at: str


class PredictionRecordEnvelope(BaseModel):
    data: PredictionRecord
    meta: Meta


class PredictionRecordsEnvelope(BaseModel):
    data: list[PredictionRecord]
    meta: PageMeta


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


class ModelEnvelope(BaseModel):
    data: ModelPublic
    meta: Meta


class ModelsEnvelope(BaseModel):
    data: list[ModelPublic]
    meta: PageMeta


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in {
        400: "Malformed request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not found",
        413: "Body too large",
        422: "Validation error",
        429: "Rate limited",
        500: "Server error",
        503: "Service unavailable",
        504: "Inference timeout",
    }.items()
}


SCOPE_PATTERN = r"^(predictions:write|predictions:read|models:read|admin)$"
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$"


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=12, max_length=256)
    scopes: list[Annotated[str, Field(pattern=SCOPE_PATTERN)]] = Field(min_length=1)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(default=None, min_length=12, max_length=256)
    scopes: list[Annotated[str, Field(pattern=SCOPE_PATTERN)]] | None = Field(
        default=None, min_length=1
    )
    is_active: bool | None = None


class UserPublic(BaseModel):
    id: str
    username: str
    scopes: list[str]
    is_active: bool
    created_at: str
    updated_at: str


class UserEnvelope(BaseModel):
    data: UserPublic
    meta: Meta


class UsersEnvelope(BaseModel):
    data: list[UserPublic]
    meta: PageMeta


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    user_id: str | None = Field(default=None, description="Owner; default: the caller.")
    scopes: list[Annotated[str, Field(pattern=SCOPE_PATTERN)]] | None = Field(
        default=None, min_length=1, description="Default: the owner's scopes."
    )


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    user_id: str
    prefix: str
    scopes: list[str]
    created_at: str
    revoked_at: str | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself: shown this once, never stored.")


class ApiKeyCreatedEnvelope(BaseModel):
    data: ApiKeyCreated
    meta: Meta


class ApiKeysEnvelope(BaseModel):
    data: list[ApiKeyPublic]
    meta: PageMeta
