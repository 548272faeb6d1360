"""Scheduling lives in the database, so several workers share the mailboxes: each mailbox's
next poll (``mailboxes.next_poll_at``; NULL: due now), its failed polls in a row
(``poll_failures``, for back-off) and the worker whose poll it is now (``polled_by``).
``workers`` holds each running worker's heartbeat.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("poll_failures", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("polled_by", sa.String(128), nullable=True))
    op.create_index("ix_mailboxes_next_poll_at", "mailboxes", ["next_poll_at"])
    op.create_table(
        "workers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("running", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_index("ix_mailboxes_next_poll_at", "mailboxes")
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("polled_by")
        batch.drop_column("poll_failures")
        batch.drop_column("next_poll_at")
