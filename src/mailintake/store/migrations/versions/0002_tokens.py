"""OAuth tokens: the grant (refresh token) per mailbox and access tokens per resource.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_grants",
        sa.Column("mailbox", sa.String(64), primary_key=True),
        sa.Column("grant_type", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("account", sa.String(320), nullable=True),
        sa.Column("refresh_token", sa.Text, nullable=True),
        sa.Column("refresh_obtained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("authorized_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("mailbox", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(512), nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("obtained_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("mailbox", "resource", name="uq_access_tokens_mailbox_resource"),
    )


def downgrade() -> None:
    op.drop_table("access_tokens")
    op.drop_table("oauth_grants")
