"""SEARCH's headers in a table of their own; a covering index for flag searches.

SQLite reaches a column stored after a large BLOB only by walking the BLOB's overflow pages,
so the searchable headers 0009 put into `messages` move to `message_headers`, joined by
primary key.  The columns are dropped with ALTER TABLE (SQLite 3.35+), not by rebuilding
`messages`: dropping the old table would cascade-delete the rows just copied.

(folder_id, uid, flags) lets SELECT-time flag searches (UNSEEN, FLAGGED …) read a compact
index instead of every message row.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime
from mailstack.store.search_facts import search_facts

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 500
BIGID = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade():
    headers = op.create_table(
        "message_headers",
        sa.Column("message_id", BIGID, sa.ForeignKey("messages.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("search_headers", sa.Text, nullable=False),
        sa.Column("sent_at", UTCDateTime))
    messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("body", sa.LargeBinary),
                        sa.column("search_headers", sa.Text), sa.column("sent_at", UTCDateTime))
    conn = op.get_bind()
    conn.execute(sa.insert(headers).from_select(
        ["message_id", "search_headers", "sent_at"],
        sa.select(messages.c.id, messages.c.search_headers, messages.c.sent_at)
        .where(messages.c.search_headers.isnot(None))))
    missing = (sa.select(messages.c.id, messages.c.body)
               .where(~sa.exists().where(headers.c.message_id == messages.c.id))
               .order_by(messages.c.id).limit(BATCH))
    while rows := conn.execute(missing).all():
        values = []
        for row in rows:
            text, sent_at = search_facts(bytes(row.body))
            values.append({"message_id": row.id, "search_headers": text, "sent_at": sent_at})
        conn.execute(sa.insert(headers), values)
    op.execute("ALTER TABLE messages DROP COLUMN search_headers")
    op.execute("ALTER TABLE messages DROP COLUMN sent_at")
    op.create_index("ix_messages_folder_uid_flags", "messages", ["folder_id", "uid", "flags"])


def downgrade():
    op.drop_index("ix_messages_folder_uid_flags", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("search_headers", sa.Text))
        batch.add_column(sa.Column("sent_at", UTCDateTime))
    op.execute("UPDATE messages SET "
               "search_headers = (SELECT h.search_headers FROM message_headers h "
               "WHERE h.message_id = messages.id), "
               "sent_at = (SELECT h.sent_at FROM message_headers h WHERE h.message_id = messages.id)")
    op.drop_table("message_headers")
