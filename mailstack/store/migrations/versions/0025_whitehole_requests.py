"""Whitehole requests (issue 21, item 3): ``whitehole_requests``, filed by senders'
administrators on the HTTPS page with their findings, and the origin of each whitelist
entry: ``whitelist.request_ref`` (the request an approval came from; NULL: added by hand)
and ``whitelist.review_at`` (when the desk looks at it again).

Existing entries stay as they were: origin manual, no review date.

Revision ID: 0025
Revises: 0024
"""
import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "whitehole_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ref", sa.String(16), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("client_ip", sa.String(45), nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("bounce", sa.Text(), nullable=False),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_at", sa.DateTime()),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("note", sa.Text()),
    )
    op.create_index("ix_whitehole_requests_state_created", "whitehole_requests",
                    ["state", "created_at"])
    op.create_index("ix_whitehole_requests_ip", "whitehole_requests", ["ip"])
    # ADD COLUMN, never batch mode's copy of the table (see 0022).
    op.add_column("whitelist", sa.Column("request_ref", sa.String(16)))
    op.add_column("whitelist", sa.Column("review_at", sa.DateTime()))


def downgrade():
    op.drop_column("whitelist", "review_at")
    op.drop_column("whitelist", "request_ref")
    op.drop_table("whitehole_requests")
