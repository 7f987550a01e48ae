"""A byte range of a stored message, read without reading the whole message.

Why: POP3 RETR and IMAP FETCH of a 25 MB message used to read it whole (and on PostgreSQL
the driver holds the bytea twice more, as hex text and as bytes) before a byte was sent.
Streamed a range at a time, a large message costs one range of memory however large it
is (issue 13).  On SQLite the range comes through incremental blob I/O
(https://sqlite.org/c3ref/blob_open.html), which reads only the pages it needs; on
PostgreSQL through ``substring`` on the server.

Returns None when the message is gone (another session expunged it meanwhile).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from mailstack.store.schema import messages

STREAM_OVER = 256 * 1024   # a message (or section) this long is read and sent by ranges
RANGE = 1024 * 1024        # octets per read of such a message


def read_range(conn: Connection, message_id: int, start: int, end: int) -> bytes | None:
    """Octets ``start`` to ``end`` (exclusive) of the stored message ``message_id``."""
    if end <= start:
        return b""
    if conn.dialect.name == "sqlite":
        return _sqlite_range(conn, message_id, start, end)
    row = conn.execute(select(func.substring(messages.c.body, start + 1, end - start))
                       .where(messages.c.id == message_id)).first()
    return None if row is None else bytes(row[0])


def _sqlite_range(conn: Connection, message_id: int, start: int, end: int) -> bytes | None:
    driver = conn.connection.driver_connection
    try:
        blob = driver.blobopen("messages", "body", message_id, readonly=True)
    except driver.OperationalError:          # "no such rowid": the message is gone
        return None
    with blob:
        blob.seek(min(start, len(blob)))
        return blob.read(end - start)
