"""Folder change counters, and the notice that wakes IMAP clients idling on a folder.

Why: a client in IDLE (RFC 2177) must hear of a delivery, a flag change or an expunge made by
any session of any process sharing the database.  Every write to a folder bumps
``folders.modseq`` in the same transaction.  On PostgreSQL it also sends
``NOTIFY mailstack_folders, '<folder id>'``, which PostgreSQL delivers at COMMIT to every
listening process; SQLite has no NOTIFY, so other processes see the counter when they poll.
Inside one process ``Database`` hands the touched ids to its commit listeners after COMMIT.
"""

from __future__ import annotations

from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from mailstack.store.schema import folders

CHANNEL = "mailstack_folders"
TOUCHED = "mailstack_touched"   # key in Connection.info: folder ids written this transaction


def touch(conn: Connection, folder_ids) -> dict[int, int]:
    """Bump the folders' modseq; the new values (messages changed now carry them)."""
    ids = sorted(set(folder_ids))
    if not ids:
        return {}
    rows = conn.execute(update(folders).where(folders.c.id.in_(ids))
                        .values(modseq=folders.c.modseq + 1)
                        .returning(folders.c.id, folders.c.modseq)).all()
    notice(conn, ids)
    return {row.id: int(row.modseq) for row in rows}


def notice(conn: Connection, ids) -> None:
    """Tell watchers, at COMMIT, that these folders changed (their modseq already bumped)."""
    conn.info.setdefault(TOUCHED, set()).update(ids)
    if conn.dialect.name == "postgresql":
        for folder_id in ids:
            conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                         {"channel": CHANNEL, "payload": str(folder_id)})


def modseqs(conn: Connection, folder_ids) -> dict[int, int]:
    ids = list(folder_ids)
    if not ids:
        return {}
    rows = conn.execute(select(folders.c.id, folders.c.modseq).where(folders.c.id.in_(ids)))
    return {row.id: int(row.modseq) for row in rows}
