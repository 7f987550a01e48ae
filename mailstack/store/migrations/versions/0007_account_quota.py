"""A storage quota per account (NULL: unlimited).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("quota_bytes", sa.BigInteger))


def downgrade():
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("quota_bytes")
