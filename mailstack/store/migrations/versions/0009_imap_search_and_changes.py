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


def upgrade():
    with op.batch_alter_table("folders") as batch:
        batch.add_column(sa.Column("modseq", sa.BigInteger, nullable=False, server_default="0"))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("search_headers", sa.Text))
        batch.add_column(sa.Column("sent_at", UTCDateTime))
        batch.add_column(sa.Column("modseq", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index("ix_messages_folder_modseq", "messages", ["folder_id", "modseq"])
    conn = op.get_bind()
    messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("body", sa.LargeBinary),
                        sa.column("search_headers", sa.Text), sa.column("sent_at", UTCDateTime))
    last = 0
    while True:
        rows = conn.execute(sa.select(messages.c.id, messages.c.body)
                            .where(messages.c.id > last).order_by(messages.c.id).limit(BATCH)).all()
        if not rows:
            break
        for row in rows:
            headers, sent_at = search_facts(bytes(row.body))
            conn.execute(sa.update(messages).where(messages.c.id == row.id)
                         .values(search_headers=headers, sent_at=sent_at))
        last = rows[-1].id


def downgrade():
    op.drop_index("ix_messages_folder_modseq", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("modseq")
        batch.drop_column("sent_at")
        batch.drop_column("search_headers")
    with op.batch_alter_table("folders") as batch:
        batch.drop_column("modseq")
