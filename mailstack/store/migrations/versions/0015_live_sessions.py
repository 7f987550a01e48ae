"""Who is logged in now: ``live_sessions`` (issue 15, item 12: ``mailstack who`` / ``kick``).

One row per logged-in connection on every node sharing the database, deleted when it
closes; a node deletes its own rows when it starts (leftovers of a crash) and when it
stops.  ``kick`` is how ``mailstack kick`` asks the node to close the connection.

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "live_sessions",
        sa.Column("id", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), primary_key=True),
        sa.Column("node", sa.String(255), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("username", sa.String(320), nullable=False),
        sa.Column("client_ip", sa.String(45), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("kick", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_live_sessions_node", "live_sessions", ["node"])
    op.create_index("ix_live_sessions_username", "live_sessions", ["username"])


def downgrade():
    op.drop_index("ix_live_sessions_username", "live_sessions")
    op.drop_index("ix_live_sessions_node", "live_sessions")
    op.drop_table("live_sessions")
