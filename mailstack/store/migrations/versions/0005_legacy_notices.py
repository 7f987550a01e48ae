"""Notices sent to legacy customers, one per account and phase (the report shows them).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "legacy_notices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_legacy_notices_account_phase", "legacy_notices", ["account_id", "phase"])


def downgrade():
    op.drop_table("legacy_notices")
