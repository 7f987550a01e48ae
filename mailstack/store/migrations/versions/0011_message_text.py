"""SEARCH BODY/TEXT over the decoded text of each message (store/search_facts.body_text).

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.search_facts import body_text

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH = 500
BIGID = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade():
    text = op.create_table(
        "message_text",
        sa.Column("message_id", BIGID, sa.ForeignKey("messages.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("body_text", sa.Text, nullable=False))
    messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("body", sa.LargeBinary))
    conn = op.get_bind()
    last = 0
    while rows := conn.execute(sa.select(messages.c.id, messages.c.body)
                               .where(messages.c.id > last).order_by(messages.c.id)
                               .limit(BATCH)).all():
        conn.execute(sa.insert(text), [{"message_id": row.id, "body_text": body_text(bytes(row.body))}
                                       for row in rows])
        last = rows[-1].id


def downgrade():
    op.drop_table("message_text")
