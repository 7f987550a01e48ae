"""Initial schema: domains, accounts, aliases, folders, messages, login events, POP3 locks.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIGID = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade():
    op.create_table(
        "domains",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(253), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("address", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.UniqueConstraint("address", "target", name="uq_aliases_address_target"),
    )
    op.create_index("ix_aliases_address", "aliases", ["address"])
    op.create_table(
        "folders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger, nullable=False),
        sa.Column("uidnext", sa.BigInteger, nullable=False),
        sa.Column("special_use", sa.String(32)),
        sa.Column("subscribed", sa.Boolean, nullable=False),
        sa.UniqueConstraint("account_id", "name", name="uq_folders_account_name"),
    )
    op.create_table(
        "messages",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("folder_id", sa.Integer, sa.ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
        sa.Column("uid", sa.BigInteger, nullable=False),
        sa.Column("guid", sa.String(32), nullable=False, unique=True),
        sa.Column("internal_date", UTCDateTime, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("flags", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("folder_id", "uid", name="uq_messages_folder_uid"),
    )
    op.create_table(
        "login_events",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL")),
        sa.Column("username", sa.String(320), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("client_ip", sa.String(45), nullable=False),
        sa.Column("tls", sa.Boolean, nullable=False),
        sa.Column("mechanism", sa.String(32), nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("client_name", sa.String(255)),
    )
    op.create_index("ix_login_events_ip_at", "login_events", ["client_ip", "at"])
    op.create_index("ix_login_events_account_at", "login_events", ["account_id", "at"])
    op.create_table(
        "mailbox_locks",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )


def downgrade():
    for table in ("mailbox_locks", "login_events", "messages", "folders", "aliases",
                  "accounts", "domains"):
        op.drop_table(table)
