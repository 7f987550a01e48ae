"""Sieve vacation replies sent: ``vacation_replies`` (issue 19, RFC 5230 §4.1, §4.2).

One row per (account, sender, handle): when that sender was last answered with that
response, so a sender gets at most one reply per ``:days``.  Written in the transaction
that stores the message the reply answers (``delivery/sieve_delivery.py``), so a crash
leaves neither the message nor the record.  Times come from the business clock.

Revision ID: 0024
Revises: 0023
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "vacation_replies",
        sa.Column("account_id", sa.Integer(),
                  sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("handle", sa.String(100), nullable=False),
        sa.Column("replied_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "sender", "handle",
                                name="pk_vacation_replies"),
    )


def downgrade():
    op.drop_table("vacation_replies")
