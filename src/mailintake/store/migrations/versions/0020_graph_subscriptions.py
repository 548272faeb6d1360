"""Microsoft Graph change-notification subscriptions, one per mailbox (its folder): Graph's
id for it, the URL it notifies and when it expires. Its clientState is a secret, kept
encrypted in ``secrets`` (owner kind ``subscription``).

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "graph_subscriptions",
        sa.Column("mailbox", sa.String(64), primary_key=True),
        sa.Column("folder", sa.String(400), nullable=False),
        sa.Column("subscription_id", sa.String(128), nullable=True, unique=True),
        sa.Column("notification_url", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("renew_now", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("graph_subscriptions")
