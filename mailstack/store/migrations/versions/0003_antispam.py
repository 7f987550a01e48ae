"""Anti-spam state and the support desk's rejection log: blocks, whitelist, complaints,
rejections.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIGID = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade():
    op.create_table(
        "blocks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("network", sa.String(49), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("removed_at", UTCDateTime),
    )
    op.create_index("ix_blocks_network_expires", "blocks", ["network", "expires_at"])
    op.create_table(
        "whitelist",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("entry", sa.String(255), nullable=False, unique=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
    )
    op.create_index("ix_complaints_ip_at", "complaints", ["ip", "at"])
    op.create_table(
        "rejections",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("ref", sa.String(16), nullable=False, unique=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("session", sa.String(32), nullable=False),
        sa.Column("port", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("check_name", sa.String(32), nullable=False),
        sa.Column("client_ip", sa.String(45), nullable=False),
        sa.Column("ptr", sa.String(255)),
        sa.Column("helo", sa.String(255)),
        sa.Column("mail_from", sa.String(320)),
        sa.Column("rcpt_to", sa.String(320)),
        sa.Column("reply", sa.Text, nullable=False),
    )
    op.create_index("ix_rejections_ip_at", "rejections", ["client_ip", "at"])
    op.create_index("ix_rejections_at", "rejections", ["at"])
    op.create_index("ix_rejections_rcpt_at", "rejections", ["rcpt_to", "at"])
    op.create_index("ix_rejections_from_at", "rejections", ["mail_from", "at"])


def downgrade():
    for table in ("rejections", "complaints", "whitelist", "blocks"):
        op.drop_table(table)
