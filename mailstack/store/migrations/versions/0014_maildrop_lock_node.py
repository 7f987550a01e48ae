"""POP3 maildrop locks name the node that holds them (issue 13, item 7).

``mailbox_locks.node``: the node whose session took the lock, so that a node restarted
after ``kill -9`` frees its own leftovers at once and a stopping node frees what it holds,
while the locks of other nodes sharing the database are left alone.  Locks taken before
this revision have no node and simply expire, as they did.

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("mailbox_locks", sa.Column("node", sa.String(255)))
    op.create_index("ix_mailbox_locks_node", "mailbox_locks", ["node"])


def downgrade():
    op.drop_index("ix_mailbox_locks_node", "mailbox_locks")
    with op.batch_alter_table("mailbox_locks") as batch:
        batch.drop_column("node")
