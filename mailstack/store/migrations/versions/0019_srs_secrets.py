"""The SRS secret: ``srs_secrets`` (issue 17, forwarding).

The key of the HMAC in the rewritten senders of forwarded mail (``mailstack/srs.py``),
made once by the first server that starts without ``[forwarding] srs_secrets`` in its
configuration, and kept here so that every node sharing one PostgreSQL reverses the
addresses every other node wrote, and a restart does not orphan the bounces on their
way back.  ``generation`` is unique, so two nodes starting at once keep one secret.

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "srs_secrets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("generation", name="uq_srs_secrets_generation"),
    )


def downgrade():
    op.drop_table("srs_secrets")
