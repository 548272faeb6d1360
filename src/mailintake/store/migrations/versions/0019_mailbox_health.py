"""Each mailbox's health (healthy, lagging, needs_a_person, failing, disabled) and what it is
decided from: when a poll last succeeded, how many polls in a row failed and since when,
and the health last recorded with the time it began.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("failures_in_a_row", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("health", sa.String(16), nullable=True))
        batch.add_column(sa.Column("health_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        for column in (
            "health_since",
            "health",
            "first_failure_at",
            "failures_in_a_row",
            "last_success_at",
        ):
            batch.drop_column(column)
