"""users.credential_epoch: tokens carry it, so an account change revokes them at once

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The server default covers existing rows and rows written by the previous release during a
    # rolling deployment (expand first); the new code writes a random epoch itself.
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("credential_epoch", sa.String(length=32), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("credential_epoch")
