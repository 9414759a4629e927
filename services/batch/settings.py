"""Batch-scoring jobs: where their files live, what may be referenced, chunking (`JOBS_*`)."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class JobSettings(BaseSettings):
    """How batch-scoring jobs are accepted, stored and run (`JOBS_*`)."""

    model_config = SettingsConfigDict(env_prefix="JOBS_", extra="ignore")

    enabled: bool = Field(default=True, description="Accept batch-scoring jobs at /api/v1/jobs.")
    run: bool = Field(
        default=True,
        description="Whether this process's gateway workers score queued jobs (false: accept "
        "and report only, and let other replicas score).",
    )
    directory: Path = Field(
        default=Path(".jobs"),
        description="Uploaded inputs, result parts and results; in production a volume every "
        "replica mounts (a job may resume on another replica).",
    )
    sources: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Directories (or pyarrow filesystem URIs such as s3://bucket/prefix) whose "
        "files a job may reference instead of uploading, comma-separated; empty: uploads only.",
    )
    max_upload_bytes: int = Field(
        default=1 << 30, ge=1024, description="Largest uploaded file (bytes)."
    )
    chunk_rows: int = Field(
        default=16_384,
        ge=64,
        le=1_048_576,
        description="Rows scored, written and logged together; memory grows with it, not with "
        "the file.",
    )
    lease_s: float = Field(
        default=60.0,
        ge=5,
        le=3600,
        description="A running job whose worker has not committed a chunk for this long is "
        "taken over by another worker, resuming after its last committed chunk.",
    )
    poll_s: float = Field(default=1.0, gt=0, le=60, description="How often idle workers look.")
    chunk_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Longest wait for the runner's answer to one chunk (requests have "
        "SERVING_INFERENCE_TIMEOUT_S; a slow chunk does not open the runner's breaker).",
    )
    retry_for_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="While the runner or the database is unavailable, a job retries its chunk "
        "(backing off up to 30 s) for this long, then fails with the reason.",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Claims before a job that keeps losing its worker is marked failed.",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="A Dask scheduler address (tcp://host:8786): Parquet jobs are then scored on "
        "that cluster, one task per group of row groups, each Dask worker loading the model "
        "through the verifying loader; the input must be readable there (a shared volume or an "
        "object store). Needs the `batch` extra; rows are not copied into the prediction log "
        "(log_rows is refused). Unset: the gateway workers score jobs themselves.",
    )
    log_rows: bool = Field(
        default=False,
        description="Default for a job's `log_rows`. A job always logs one entry per chunk "
        "(rows, failures, version, result part digest); with log_rows every scored row also "
        "goes into the prediction log (COPY per chunk on PostgreSQL), for labels and drift, "
        "at several times the job's time (bench/README.md).",
    )

    @field_validator("sources", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


@lru_cache(maxsize=1)
def job_settings() -> JobSettings:
    """The process-wide job settings, read once."""
    return JobSettings()
