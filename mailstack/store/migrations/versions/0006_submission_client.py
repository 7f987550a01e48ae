"""Submissions remember the mail program: the EHLO name and the User-Agent/X-Mailer header.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("helo", sa.String(255)))
        batch.add_column(sa.Column("user_agent", sa.String(255)))


def downgrade():
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("user_agent")
        batch.drop_column("helo")
