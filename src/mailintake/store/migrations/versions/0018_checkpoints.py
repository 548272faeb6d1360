"""Where each mailbox's import stands, per folder, so that a poll asks the server only for
what is new (``checkpoints``: an IMAP folder's UIDVALIDITY and the highest UID handled; a
generic ``cursor`` for sources that resume from a token). Each import record keeps its
message's Message-ID (``imports.message_id``): a folder recreated on the server (a new
UIDVALIDITY) is screened by Message-ID and size against what was imported before. The
records are found by mailbox and status (``ix_imports_mailbox_status``): a poll with nothing
new reads the few failed or unacknowledged ones, not every message kept on the server.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("mailbox", sa.String(64), nullable=False),
        sa.Column("folder", sa.String(400), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger, nullable=True),
        sa.Column("last_uid", sa.BigInteger, nullable=True),
        sa.Column("cursor", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox", "folder", name="pk_checkpoints"),
    )
    with op.batch_alter_table("imports") as batch:
        batch.add_column(sa.Column("message_id", sa.Text, nullable=True))
    op.create_index("ix_imports_mailbox_status", "imports", ["mailbox", "status"])


def downgrade() -> None:
    op.drop_index("ix_imports_mailbox_status", table_name="imports")
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("message_id")
    op.drop_table("checkpoints")
