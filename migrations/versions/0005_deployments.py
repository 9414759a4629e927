"""deployments: model deployments with their revision history, shadow predictions, leases

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "deployment_revisions",
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("production", sa.String(length=200), nullable=False),
        sa.Column("canary_version", sa.String(length=200), nullable=True),
        sa.Column("canary_weight", sa.Float(), nullable=False),
        sa.Column("canary_sticky", sa.String(length=16), nullable=False),
        sa.Column("shadow", JSON_DOCUMENT, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("restored_revision", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model_name", "revision", name=op.f("pk_deployment_revisions")),
    )
    op.create_table(
        "model_deployments",
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_name", "revision"],
            ["deployment_revisions.model_name", "deployment_revisions.revision"],
            name=op.f("fk_model_deployments_model_name_deployment_revisions"),
        ),
        sa.PrimaryKeyConstraint("model_name", name=op.f("pk_model_deployments")),
    )
    op.create_table(
        "monitoring_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_monitoring_leases")),
    )
    # Batch mode: SQLite cannot add a foreign key to an existing table, so Alembic rebuilds
    # it there; PostgreSQL gets plain ALTER TABLE statements (the default is a constant, so
    # adding `role` does not rewrite the table).
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(
            sa.Column("role", sa.String(length=16), server_default="production", nullable=False)
        )
        batch.add_column(sa.Column("shadow_of", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_predictions_shadow_of_predictions"),
            "predictions",
            ["shadow_of"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(
            op.f("ix_predictions_model_name_role_created_at"),
            ["model_name", "role", "created_at"],
        )
        batch.create_index(op.f("ix_predictions_shadow_of"), ["shadow_of"])


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_index(op.f("ix_predictions_shadow_of"))
        batch.drop_index(op.f("ix_predictions_model_name_role_created_at"))
        batch.drop_constraint(op.f("fk_predictions_shadow_of_predictions"), type_="foreignkey")
        batch.drop_column("shadow_of")
        batch.drop_column("role")
    op.drop_table("monitoring_leases")
    op.drop_table("model_deployments")
    op.drop_table("deployment_revisions")
