"""A mailbox can be made due at once (push: a new message announced by the server). A wake
that comes while the mailbox is being polled is kept (``mailboxes.wake_requested_at``) so
that the poll's end makes it due again at once instead of one interval later.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("wake_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("wake_requested_at")
