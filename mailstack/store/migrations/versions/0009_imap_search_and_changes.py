"""IDLE and SEARCH in SQL: change counters per folder and message, searchable headers.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime
from mailstack.store.search_facts import search_facts

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 500
BIGID = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade():
    with op.batch_alter_table("folders") as batch:
        batch.add_column(sa.Column("modseq", sa.BigInteger, nullable=False, server_default="0"))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("modseq", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index("ix_messages_folder_modseq", "messages", ["folder_id", "modseq"])
    headers = op.create_table(
        "message_headers",
        sa.Column("message_id", BIGID, sa.ForeignKey("messages.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("search_headers", sa.Text, nullable=False),
        sa.Column("sent_at", UTCDateTime))
    conn = op.get_bind()
    messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("body", sa.LargeBinary))
    last = 0
    while True:
        rows = conn.execute(sa.select(messages.c.id, messages.c.body)
                            .where(messages.c.id > last).order_by(messages.c.id).limit(BATCH)).all()
        if not rows:
            break
        values = []
        for row in rows:
            text, sent_at = search_facts(bytes(row.body))
            values.append({"message_id": row.id, "search_headers": text, "sent_at": sent_at})
        conn.execute(sa.insert(headers), values)
        last = rows[-1].id


def downgrade():
    op.drop_table("message_headers")
    op.drop_index("ix_messages_folder_modseq", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("modseq")
    with op.batch_alter_table("folders") as batch:
        batch.drop_column("modseq")
