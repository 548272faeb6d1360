"""Refusals of a stored refresh token that are not documented as final: how many since the
last token obtained, and when the first was, so that a momentary refusal keeps the mailbox
authorized and only repeated refusals over time ask a person to sign in again.

Revision ID: 0011
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_grants") as batch:
        batch.add_column(sa.Column("refusals", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("first_refused_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_grants") as batch:
        batch.drop_column("first_refused_at")
        batch.drop_column("refusals")
