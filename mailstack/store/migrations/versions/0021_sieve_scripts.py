"""Customers' Sieve scripts: ``sieve_scripts`` (issue 19, filters and vacation).

One row per script of an account (RFC 5804 §1.6: a name, UTF-8 text), the one that runs
at delivery marked ``active``.  The database keeps "at most one active per account" with
a partial unique index, so two ManageSieve sessions activating different scripts at once
cannot leave two active.  Times come from the business clock, never a default.

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sieve_scripts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(),
                  sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("account_id", "name", name="uq_sieve_scripts_account_name"),
    )
    op.create_index("uq_sieve_scripts_active", "sieve_scripts", ["account_id"], unique=True,
                    sqlite_where=sa.text("active"), postgresql_where=sa.text("active"))


def downgrade():
    op.drop_index("uq_sieve_scripts_active", table_name="sieve_scripts")
    op.drop_table("sieve_scripts")
