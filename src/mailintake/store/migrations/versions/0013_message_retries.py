"""Messages that fail on their own are tried again later, each on its own back-off: when the
next try is due (``imports.next_try_at``). Parked (tried too often) and skipped (by a person)
messages are statuses of their own (``imports.status`` holds the word).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.add_column(sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("next_try_at")
