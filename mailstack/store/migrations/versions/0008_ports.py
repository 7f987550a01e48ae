"""Login events and submissions remember the server port (110 or 995, 25 or 587...).

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("login_events", "submissions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("port", sa.Integer))


def downgrade():
    for table in ("login_events", "submissions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("port")
