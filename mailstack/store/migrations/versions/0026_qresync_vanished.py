"""QRESYNC (RFC 7162): the UIDs expunged from each folder, with the modseq of the expunge.

``vanished`` (folder, UID, modseq), indexed on (folder, modseq) so that a resync reads
the expunges past the client's modseq, not the folder; ``folders.vanished_floor``: the
expunges at or below it are not all recorded.  For the folders that exist it is their
modseq today, since earlier expunges were never recorded: a client resynchronising from
an older modseq gets the full answer (store/vanished.py).  Mod-sequences become positive
(RFC 7162 §3.1.1: 0 is not a mod-sequence of a message).

Revision ID: 0026
Revises: 0025
"""
import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade():
    # ADD COLUMN, not batch mode's copy of the table: on SQLite that copy drops
    # ``folders``, and the ON DELETE CASCADE of messages would empty them.
    op.add_column("folders", sa.Column("vanished_floor", sa.BigInteger, nullable=False,
                                       server_default="0"))
    op.execute("UPDATE folders SET modseq = 1 WHERE modseq = 0")
    op.execute("UPDATE messages SET modseq = 1 WHERE modseq = 0")
    op.execute("UPDATE folders SET vanished_floor = modseq")
    op.create_table(
        "vanished",
        sa.Column("folder_id", sa.Integer, sa.ForeignKey("folders.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("uid", sa.BigInteger, primary_key=True),
        sa.Column("modseq", sa.BigInteger, nullable=False))
    op.create_index("ix_vanished_folder_modseq", "vanished", ["folder_id", "modseq"])


def downgrade():
    op.drop_index("ix_vanished_folder_modseq", "vanished")
    op.drop_table("vanished")
    op.drop_column("folders", "vanished_floor")     # SQLite 3.35+: no copy (see upgrade)
