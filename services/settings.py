"""Service settings: one pydantic-settings class per concern, each with its own env prefix."""

import math
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODELS = ("fraud-xgb", "cancer-rf", "digits-mlp")
GATEWAY_SERVICE = "gateway"  # the entry service's BentoML name; runners outlive its workers


class ServingSettings(BaseSettings):
    """How models are served: which ones, input limits, batching and timeouts (`SERVING_*`)."""

    model_config = SettingsConfigDict(env_prefix="SERVING_", extra="ignore")

    environment: Literal["development", "production"] = Field(
        default="development", description="Production refuses weak secrets and defaults."
    )
    models: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_MODELS,
        description="Models to serve, comma-separated: `name` (its newest version in the store) "
        "or `name:version`; list several versions of one name to serve them side by side.",
    )
    max_rows: int = Field(default=256, ge=1, le=10_000, description="Rows per prediction request.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Request body limit.")
    range_policy: Literal["reject", "flag"] = Field(
        default="reject", description="Values outside the training range: 422, or accept and flag."
    )
    inference_timeout_s: float = Field(default=10.0, gt=0, description="Runner call timeout.")
    batching: bool = Field(
        default=True,
        description="Coalesce concurrent requests in the gateway and batch in runners.",
    )
    max_batch_size: int = Field(default=512, ge=1, description="Rows per runner batch.")
    max_latency_ms: int = Field(
        default=2_000,
        ge=50,
        description="Runner batching latency budget; small values make BentoML shed load with 503.",
    )
    coalesce_in_flight: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Runner calls in flight per framework before coalescing.",
    )
    gateway_workers: int = Field(default=1, ge=1, le=32, description="Gateway processes.")
    torch_device: str = Field(default="cpu", description="Device for PyTorch models: cpu or cuda.")
    torch_threads: int = Field(default=1, ge=1, le=64, description="PyTorch intra-op threads.")
    # Read at import, when BentoML records the runner's resources; the GPU bento sets it to 1.
    torch_gpu: float = Field(
        default=0, ge=0, description="GPUs the PyTorch runner asks BentoML for (0: none)."
    )
    runner_retry_after_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Circuit breaker: after a runner failed, answer 503 with Retry-After for this "
        "long before one request (or /ready) tries it again.",
    )
    idempotency_ttl_s: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="How long an Idempotency-Key is remembered (and replays its 201).",
    )
    golden_tolerance: float = Field(
        default=1e-5,
        ge=0,
        le=1e-2,
        description="Largest absolute difference from the recorded golden probabilities that a "
        "model may show at startup when it runs on other kernels than recorded them (another "
        "device, CPU instruction set or framework build); on the same kernels it is exact.",
    )

    @field_validator("models", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class ServerSettings(BaseSettings):
    """The HTTP edge: time limits, connections per client, graceful drain (`SERVER_*`).

    BentoML's own traffic timeout is set above `request_timeout_s`, so the gateway's enveloped
    504 always answers first."""

    model_config = SettingsConfigDict(env_prefix="SERVER_", extra="ignore")

    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="A connection must deliver its request line and headers within this long of "
        "opening (or of its previous response); else 408 and close.",
    )
    body_timeout_s: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="The whole request body must arrive within this long of the request start; "
        "else 408.",
    )
    request_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="A response must start within this long; else 504 in the envelope.",
    )
    max_connections_per_client: int = Field(
        default=128,
        ge=0,
        description="Open connections one client address may hold per gateway worker (0: no "
        "cap); more are answered 429 and closed. Raise or disable behind a proxy that "
        "connects for many clients.",
    )
    drain_grace_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="On SIGTERM: how long admitted requests may take to finish (new ones get 503 "
        "shutting_down) before they are cancelled. Keep preStop + this + 15 s (uvicorn's close "
        "and the runners' exit) within terminationGracePeriodSeconds.",
    )

    @property
    def bentoml_timeout_s(self) -> int:
        """BentoML's traffic timeout: above ours, so it never answers first."""
        return math.ceil(self.request_timeout_s) + 5


@lru_cache(maxsize=1)
def server_settings() -> ServerSettings:
    """The process-wide HTTP edge settings, read once."""
    return ServerSettings()


@lru_cache(maxsize=1)
def serving_settings() -> ServingSettings:
    """The process-wide serving settings, read once."""
    return ServingSettings()
