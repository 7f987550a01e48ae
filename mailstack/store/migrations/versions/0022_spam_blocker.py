"""SPAM Blocker per account: ``accounts.spam_blocker``, ``accounts.spam_tag_subject`` and
the customer's own sender lists ``spam_senders`` (issue 18, item 2).

Both switches are off for the accounts that exist: nobody's mail moves to Junk because
of an upgrade; ``[spam] blocker_default`` applies to accounts created afterwards.

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    # ADD COLUMN, never batch mode's copy of the table: on SQLite that copy drops
    # ``accounts``, and the ON DELETE CASCADE of folders and messages would empty them.
    op.add_column("accounts", sa.Column("spam_blocker", sa.Boolean(), nullable=False,
                                        server_default=sa.false()))
    op.add_column("accounts", sa.Column("spam_tag_subject", sa.Boolean(), nullable=False,
                                        server_default=sa.false()))
    op.create_table(
        "spam_senders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(),
                  sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("pattern", sa.String(320), nullable=False),
        sa.UniqueConstraint("account_id", "pattern", name="uq_spam_senders_account_pattern"),
    )


def downgrade():
    op.drop_table("spam_senders")
    op.drop_column("accounts", "spam_tag_subject")     # SQLite 3.35+: no copy (see upgrade)
    op.drop_column("accounts", "spam_blocker")
