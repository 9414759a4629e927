"""Service settings: one pydantic-settings class per concern, each with its own env prefix."""

import math
import os
from functools import lru_cache
from pathlib import Path
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
    gateway_workers: int | Literal["auto"] = Field(
        default="auto",
        description="Gateway processes: a number (1-32), or `auto`, one per CPU this process may "
        "use (the container's CPU limit where one is set, else the cores it may run on).",
    )
    # Read at import, when the entry service declares its runners and models.
    inprocess: Annotated[tuple[Literal["sklearn", "xgboost"], ...], NoDecode] = Field(
        default=("sklearn", "xgboost"),
        description="Frameworks whose models each gateway worker loads and predicts itself, "
        "comma-separated (empty: every framework in its own runner service). A small model's "
        "predict costs less CPU than the HTTP hop to a runner; PyTorch always keeps its runner "
        "(its threads, device and GPU).",
    )
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

    @field_validator("gateway_workers")
    @classmethod
    def _workers(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 32:
            raise ValueError("gateway_workers must be `auto` or between 1 and 32")
        return value

    @property
    def gateway_worker_count(self) -> int:
        """How many gateway processes BentoML starts."""
        if self.gateway_workers == "auto":
            return min(available_cpus(), 32)
        return self.gateway_workers

    @field_validator("models", "inprocess", mode="before")
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


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: the cores it may run on, capped by a cgroup CPU limit (a
    container's `resources.limits.cpu`), rounded up; at least 1."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_cpu_limit(cgroup)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(cpus, 1)


def _cgroup_cpu_limit(cgroup: Path) -> float | None:
    """The CPU limit in CPUs (cgroup v2 `cpu.max`, else v1's CFS quota), None when unlimited."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


@lru_cache(maxsize=1)
def server_settings() -> ServerSettings:
    """The process-wide HTTP edge settings, read once."""
    return ServerSettings()


@lru_cache(maxsize=1)
def serving_settings() -> ServingSettings:
    """The process-wide serving settings, read once."""
    return ServingSettings()
