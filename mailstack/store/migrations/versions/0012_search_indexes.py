"""Indexes that make the common SEARCH keys cost what they find, not the folder's size.

Partial indexes over the messages without \\Seen, with \\Flagged and with \\Deleted (their
predicate is ``schema.flag_sql``, repeated word for word by the queries that use them;
covering, as both engines re-check it on each entry); (folder_id, internal_date, uid) and
(folder_id, size, uid) for the date and size keys; on PostgreSQL, statistics on the flag
words, so that the planner knows how few rows those indexes hold.  The covering index
(folder_id, uid, flags) of 0010 goes: SQLite's planner, without statistics, preferred it to
the partial indexes, which made UNSEEN scan the folder again.  System flags written before
this revision in another spelling (``\\SEEN``) are rewritten in the canonical one, which
the indexes and the searches assume.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.mailboxes import flags_text
from mailstack.store.schema import flag_sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BATCH = 1000
FLAG_STATISTICS = "st_messages_flag_words"
# As schema.FLAG_INDEXES stood at this revision (a later change gets a revision of its own).
FLAG_INDEXES = {"ix_messages_folder_unseen": ("\\Seen", False),
                "ix_messages_folder_flagged": ("\\Flagged", True),
                "ix_messages_folder_deleted": ("\\Deleted", True)}


def upgrade():
    _canonical_flags()
    op.drop_index("ix_messages_folder_uid_flags", "messages")
    op.create_index("ix_messages_folder_date", "messages", ["folder_id", "internal_date", "uid"])
    op.create_index("ix_messages_folder_size", "messages", ["folder_id", "size", "uid"])
    for name, flag in FLAG_INDEXES.items():
        where = sa.text(flag_sql(*flag))
        op.create_index(name, "messages", ["folder_id", "uid", "flags"], sqlite_where=where,
                        postgresql_where=where)
    conn = op.get_bind()
    if conn.dialect.name == "postgresql" and conn.dialect.server_version_info >= (14,):
        # Without statistics on the flag words PostgreSQL guesses that NOT LIKE matches
        # nearly every row, and reads the folder rather than the small unseen index.
        op.execute(f"CREATE STATISTICS {FLAG_STATISTICS} ON ((' ' || flags || ' ')) FROM messages")


def _canonical_flags():
    """Reads (id, flags) of the rows with a system flag, in batches; rewrites the rare ones
    spelled otherwise."""
    messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("flags", sa.Text))
    conn = op.get_bind()
    last = 0
    while rows := conn.execute(sa.select(messages.c.id, messages.c.flags)
                               .where(messages.c.id > last, messages.c.flags.like("%\\%", escape="!"))
                               .order_by(messages.c.id).limit(BATCH)).all():
        last = rows[-1].id
        for row in rows:
            fixed = flags_text(row.flags.split())
            if fixed != row.flags:
                conn.execute(messages.update().where(messages.c.id == row.id).values(flags=fixed))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP STATISTICS IF EXISTS {FLAG_STATISTICS}")
    for name in reversed(list(FLAG_INDEXES)):
        op.drop_index(name, "messages")
    op.drop_index("ix_messages_folder_size", "messages")
    op.drop_index("ix_messages_folder_date", "messages")
    op.create_index("ix_messages_folder_uid_flags", "messages", ["folder_id", "uid", "flags"])
