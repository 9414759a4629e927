"""scoring_jobs: batch-scoring jobs, their progress and the lease of the worker scoring them;
scoring_job_chunks: one log entry per committed chunk

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "scoring_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=True),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("input_path", sa.String(length=1024), nullable=False),
        sa.Column("input_format", sa.String(length=16), nullable=False),
        sa.Column("id_column", sa.String(length=64), nullable=True),
        sa.Column("ignored_columns", JSON_DOCUMENT, nullable=False),
        sa.Column("log_rows", sa.Boolean(), nullable=False),
        sa.Column("chunk_rows", sa.Integer(), nullable=False),
        sa.Column("rows_total", sa.BigInteger(), nullable=True),
        sa.Column("rows_done", sa.BigInteger(), nullable=False),
        sa.Column("rows_failed", sa.BigInteger(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("result_path", sa.String(length=1024), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_jobs")),
    )
    op.create_index(
        op.f("ix_scoring_jobs_status_created_at"), "scoring_jobs", ["status", "created_at"]
    )
    op.create_index(
        op.f("ix_scoring_jobs_principal_created_at"), "scoring_jobs", ["principal", "created_at"]
    )
    op.create_table(
        "scoring_job_chunks",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("chunk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("first_row", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("part_sha256", sa.String(length=64), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["scoring_jobs.id"],
            name=op.f("fk_scoring_job_chunks_job_id_scoring_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "chunk", name=op.f("pk_scoring_job_chunks")),
    )


def downgrade() -> None:
    op.drop_table("scoring_job_chunks")
    op.drop_index(op.f("ix_scoring_jobs_principal_created_at"), table_name="scoring_jobs")
    op.drop_index(op.f("ix_scoring_jobs_status_created_at"), table_name="scoring_jobs")
    op.drop_table("scoring_jobs")
