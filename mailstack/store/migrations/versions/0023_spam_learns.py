"""The learn queue of the Junk folder: ``spam_learns`` (issue 18, learning).

A message a customer moves into \\Junk over IMAP is taught to rspamd as spam, one moved
out of it as ham (``store/spam_learning.py``).  The row is written in the transaction of
the COPY or MOVE, so it is durable exactly when the client's OK is, and carries the body
until the learn is done (the customer may expunge the message meanwhile).  Unique per
account, message digest and direction: never learned twice the same way.

Revision ID: 0023
Revises: 0022
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import ID, CleanText, UTCDateTime

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "spam_learns",
        sa.Column("id", ID(), primary_key=True),
        sa.Column("account_id", sa.Integer(),
                  sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("body", sa.LargeBinary()),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("claimed_until", UTCDateTime),
        sa.Column("last_error", CleanText, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("account_id", "digest", "direction", name="uq_spam_learns_message"),
    )
    op.create_index("ix_spam_learns_status_next", "spam_learns", ["status", "next_attempt_at"])
    op.create_index("ix_spam_learns_updated", "spam_learns", ["updated_at"])


def downgrade():
    op.drop_table("spam_learns")
