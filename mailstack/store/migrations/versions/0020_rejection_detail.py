"""Why a check refused, beside the reply: ``rejections.detail`` (issue 18, spam scanning).

The reply is what the client saw and must stay short and free of internal facts; the
support desk needs more -- for a message refused as spam, rspamd's score and the symbols
that made it (``mailstack rejections`` shows them).  Every check's reason goes there.
Empty for the rows written before.

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("rejections") as batch:
        batch.add_column(sa.Column("detail", sa.Text(), nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("rejections") as batch:
        batch.drop_column("detail")
