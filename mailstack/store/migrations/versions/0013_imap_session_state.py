"""What our own IMAP layer keeps: \\Recent, UIDVALIDITY never reused, MIME structures.

``folders.recent_uid``: the UIDs up to it have been \\Recent in a session (RFC 3501 §2.3.2).
``accounts.last_uidvalidity``: the highest UIDVALIDITY the account's folders ever had,
so that a folder created again never gets an old one back (RFC 3501 §2.3.1.1); set from
today's folders.  ``message_structure``: each message's MIME tree with byte offsets
(mailstack/message/structure.py), backfilled in batches.  ``message_headers.sent_at``
becomes the Date header's wall-clock time in its own zone (search_facts.sent_on), which is
what SENTON/SENTBEFORE/SENTSINCE compare (RFC 3501 §6.4.4), and address fields in
``search_headers`` are written as ``Name <mailbox@host>`` (search_facts.addresses_text).

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

from mailstack.message.structure import analyse
from mailstack.store.schema import UTCDateTime
from mailstack.store.search_facts import search_facts

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BATCH = 500
BIGID = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade():
    op.add_column("folders", sa.Column("recent_uid", sa.BigInteger, nullable=False,
                                       server_default="0"))
    op.execute("UPDATE folders SET recent_uid = uidnext - 1")
    op.add_column("accounts", sa.Column("last_uidvalidity", sa.BigInteger, nullable=False,
                                        server_default="0"))
    op.execute("UPDATE accounts SET last_uidvalidity = COALESCE((SELECT MAX(uidvalidity) "
               "FROM folders WHERE folders.account_id = accounts.id), 0)")
    structure = op.create_table(
        "message_structure",
        sa.Column("message_id", BIGID, sa.ForeignKey("messages.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("structure", sa.Text, nullable=False))
    messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("body", sa.LargeBinary))
    headers = sa.table("message_headers", sa.column("message_id", sa.Integer),
                       sa.column("search_headers", sa.Text), sa.column("sent_at", UTCDateTime))
    conn = op.get_bind()
    last = 0
    while rows := conn.execute(sa.select(messages.c.id, messages.c.body)
                               .where(messages.c.id > last).order_by(messages.c.id)
                               .limit(BATCH)).all():
        conn.execute(sa.insert(structure), [
            {"message_id": row.id, "structure": analyse(bytes(row.body)).to_json()}
            for row in rows])
        for row in rows:
            search_headers, sent_at = search_facts(bytes(row.body))
            conn.execute(sa.update(headers).where(headers.c.message_id == row.id)
                         .values(search_headers=search_headers, sent_at=sent_at))
        last = rows[-1].id


def downgrade():
    op.drop_table("message_structure")
    op.drop_column("accounts", "last_uidvalidity")
    op.drop_column("folders", "recent_uid")
