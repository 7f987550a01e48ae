"""Protocol traces: ``traces`` (issue 15, item 16: ``mailstack trace``).

One row per address or IP network being traced; every node sharing the database polls
the rows whose ``until`` has not passed and writes the matching connections to files
under its own state_dir.  The row outlives its expiry so ``--list`` can still name it;
a new ``mailstack trace`` of the same target extends it.  ``--off`` sets ``stopped_at``
rather than moving ``until``: a node whose clock is a little behind the command's would
otherwise keep tracing until its own clock caught up.

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "traces",
        sa.Column("id", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), primary_key=True),
        sa.Column("target", sa.String(320), nullable=False, unique=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("until", UTCDateTime, nullable=False),
        sa.Column("stopped_at", UTCDateTime),
        sa.Column("added_by", sa.String(255), nullable=False, server_default=""),
        sa.Column("reason", sa.String(255), nullable=False, server_default=""),
    )
    op.create_index("ix_traces_until", "traces", ["until"])


def downgrade():
    op.drop_index("ix_traces_until", "traces")
    op.drop_table("traces")
