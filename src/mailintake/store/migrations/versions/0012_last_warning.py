"""The warnings of a mailbox's last poll (a pass that succeeded but overcame something a person
should know, such as a Graph listing that came up short and was listed again), shown by
``mailintake status`` and ``GET /api/v1/status`` next to the last error.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("last_warning", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("last_warning")
