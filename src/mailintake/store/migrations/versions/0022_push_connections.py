"""Which worker keeps a mailbox's push connection (IMAP IDLE): ``mailboxes.push_by``, one
worker at a time, taken over from a worker whose heartbeat stopped (store/push.py).

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("push_by", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("push_by")
