"""Submissions: who sent what, how (AUTH or POP-before-SMTP), from where; and the accounts
that may send as any address.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGID = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade():
    op.create_table(
        "submissions",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL")),
        sa.Column("username", sa.String(320), nullable=False),
        sa.Column("client_ip", sa.String(45), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("tls", sa.Boolean, nullable=False),
        sa.Column("recipients", sa.Integer, nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_submissions_account_at", "submissions", ["account_id", "at"])
    op.create_index("ix_submissions_method_at", "submissions", ["method", "at"])
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("may_send_as_any", sa.Boolean, nullable=False,
                                   server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("may_send_as_any")
    op.drop_table("submissions")
