"""Typed SQLAlchemy models; constraint names follow one naming convention."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Prediction(Base):
    """One predicted row: what was asked, what the model answered, and later its true label.

    `role` says how the version was chosen (production, canary, pinned by the caller, or
    shadow); a shadow row is a shadow version's answer to a copy of the production row
    `shadow_of`, never returned to the caller, and deleted with it.
    """

    __tablename__ = "predictions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128))
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(200))
    inputs: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    outputs: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    latency_ms: Mapped[float] = mapped_column(Float)
    principal: Mapped[str | None] = mapped_column(String(200))
    label: Mapped[Any | None] = mapped_column(JsonDocument)
    labelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    role: Mapped[str] = mapped_column(String(16), server_default="production")
    shadow_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("predictions.id", ondelete="CASCADE")
    )

    __table_args__ = (
        Index(None, "created_at", "id"),
        Index(None, "model_name", "created_at"),
        Index(None, "model_name", "model_version", "created_at"),
        Index(None, "model_name", "role", "created_at"),
        Index(None, "labelled_at"),
        Index(None, "request_id"),
        Index(None, "shadow_of"),
    )


class User(Base):
    """Someone who signs in with a password (OAuth2 password grant) or owns API keys."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(JsonDocument)
    is_active: Mapped[bool] = mapped_column(Boolean)
    # Random, replaced on every account change; our tokens carry it, so a change revokes them.
    credential_epoch: Mapped[str] = mapped_column(String(32), server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """A key shown once at creation; stored as a SHA-256 hash, found by its public prefix."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index(None, "user_id"),)


class DeploymentRevision(Base):
    """One revision of a model's deployment, append-only: what it became, who, when and how."""

    __tablename__ = "deployment_revisions"

    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    production: Mapped[str] = mapped_column(String(200))
    canary_version: Mapped[str | None] = mapped_column(String(200))
    canary_weight: Mapped[float] = mapped_column(Float)
    canary_sticky: Mapped[str] = mapped_column(String(16))
    shadow: Mapped[list[str]] = mapped_column(JsonDocument)
    action: Mapped[str] = mapped_column(String(16))
    restored_revision: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelDeployment(Base):
    """The current deployment of one model: a pointer to its latest revision.

    The sum of `revision` over this table grows by one with every committed change, so the
    gateway workers poll it as a cheap change counter.
    """

    __tablename__ = "model_deployments"

    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        ForeignKeyConstraint(
            ["model_name", "revision"],
            ["deployment_revisions.model_name", "deployment_revisions.revision"],
        ),
    )


class MonitoringLease(Base):
    """Which gateway worker runs a periodic job (e.g. the drift gauge refresh) until when."""

    __tablename__ = "monitoring_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(Base):
    """A client's Idempotency-Key for one POST /predictions: what it asked (a hash) and what it
    was answered, committed with the prediction rows, so a retry replays the same 201."""

    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index(None, "expires_at"),)


class ScoringJob(Base):
    """A batch-scoring job: a file scored chunk by chunk through the prediction service.

    The table is the queue: a gateway worker claims a queued job (or one whose holder's lease
    expired: it stopped) by a compare-and-set update, renews the lease with every chunk it
    commits, and records progress in the same transaction as the chunk's logged rows, so a
    restart resumes after the last committed chunk and never logs a row twice.
    """

    __tablename__ = "scoring_jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128))
    principal: Mapped[str | None] = mapped_column(String(200))
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(1024))
    input_path: Mapped[str] = mapped_column(String(1024))
    input_format: Mapped[str] = mapped_column(String(16))
    id_column: Mapped[str | None] = mapped_column(String(64))
    ignored_columns: Mapped[list[str]] = mapped_column(JsonDocument)
    log_rows: Mapped[bool] = mapped_column(Boolean)
    chunk_rows: Mapped[int] = mapped_column(Integer)
    rows_total: Mapped[int | None] = mapped_column(BigInteger)
    rows_done: Mapped[int] = mapped_column(BigInteger)
    rows_failed: Mapped[int] = mapped_column(BigInteger)
    chunks_done: Mapped[int] = mapped_column(Integer)
    result_path: Mapped[str | None] = mapped_column(String(1024))
    error: Mapped[str | None] = mapped_column(String(2000))
    attempts: Mapped[int] = mapped_column(Integer)
    holder: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index(None, "status", "created_at"),
        Index(None, "principal", "created_at"),
    )


class ScoringJobChunk(Base):
    """One committed chunk of a batch job: the job's log, one entry per chunk (not per row).

    Written in the transaction that counts the chunk, with the digest of the result part it
    produced, so the result file can be traced to the version and the rows that made it."""

    __tablename__ = "scoring_job_chunks"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scoring_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    first_row: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    model_version: Mapped[str] = mapped_column(String(200))
    part_sha256: Mapped[str] = mapped_column(String(64))
    seconds: Mapped[float] = mapped_column(Float)
    holder: Mapped[str] = mapped_column(String(128))
    committed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
