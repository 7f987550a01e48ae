"""The outbound queue: messages for other domains and the state of each recipient.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIGID = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade():
    op.create_table(
        "outbound_messages",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL")),
        sa.Column("client_ip", sa.String(45)),
    )
    op.create_index("ix_outbound_messages_queue_id", "outbound_messages", ["queue_id"])
    op.create_table(
        "outbound_recipients",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("message_id", BIGID, sa.ForeignKey("outbound_messages.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("claimed_until", UTCDateTime),
        sa.Column("last_reply", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_outbound_recipients_status_next", "outbound_recipients",
                    ["status", "next_attempt_at"])
    op.create_index("ix_outbound_recipients_message", "outbound_recipients", ["message_id"])


def downgrade():
    op.drop_table("outbound_recipients")
    op.drop_table("outbound_messages")
