"""predictions: the durable prediction log

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("inputs", JSON_DOCUMENT, nullable=False),
        sa.Column("outputs", JSON_DOCUMENT, nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=True),
        sa.Column("label", JSON_DOCUMENT, nullable=True),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
    )
    op.create_index(op.f("ix_predictions_created_at_id"), "predictions", ["created_at", "id"])
    op.create_index(
        op.f("ix_predictions_model_name_created_at"), "predictions", ["model_name", "created_at"]
    )
    op.create_index(
        op.f("ix_predictions_model_name_model_version_created_at"),
        "predictions",
        ["model_name", "model_version", "created_at"],
    )
    op.create_index(op.f("ix_predictions_labelled_at"), "predictions", ["labelled_at"])
    op.create_index(op.f("ix_predictions_request_id"), "predictions", ["request_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_predictions_request_id"), table_name="predictions")
    op.drop_index(op.f("ix_predictions_labelled_at"), table_name="predictions")
    op.drop_index(
        op.f("ix_predictions_model_name_model_version_created_at"), table_name="predictions"
    )
    op.drop_index(op.f("ix_predictions_model_name_created_at"), table_name="predictions")
    op.drop_index(op.f("ix_predictions_created_at_id"), table_name="predictions")
    op.drop_table("predictions")
