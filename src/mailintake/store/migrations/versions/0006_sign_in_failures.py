"""Wrong admin passwords by address, so that every `serve` process on one database throttles
sign-in attempts together.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sign_in_failures_address", "sign_in_failures", ["address"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_failures_address", "sign_in_failures")
    op.drop_table("sign_in_failures")
