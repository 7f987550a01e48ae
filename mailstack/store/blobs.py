"""Inserting a row with a message body, without driver copies that outlive the INSERT.

Why: pysqlite binds a BLOB parameter as a copy (SQLITE_TRANSIENT) that stays bound to
the cached prepared statement until its next execution: every pooled connection that
ever stored a 25 MB message kept 25 MB (measured: RSS 60 MB above its start after ten
such messages, issue 13 case 5).  So on SQLite a large body is inserted as
``zeroblob(n)`` -- the statement binds an integer -- and written in CHUNK pieces through
incremental blob I/O (https://sqlite.org/c3ref/blob_open.html) in the same transaction.
SQLite still builds the record in memory (about twice the body while the INSERT runs:
the zeroblob expanded, then the record), but keeps nothing afterwards.  On PostgreSQL the
body is bound as usual and the connection is closed after the transaction
(``db.large_body``), since libpq keeps its buffers as large as the largest message sent.

``body`` is the message's ``bytes`` or a ``SpooledMessage`` (message/spool.py): written
from its spool in pieces on SQLite, so that the SQLite record and the whole message are
not in memory at the same time; read whole for the PostgreSQL parameter.
"""

from __future__ import annotations

from sqlalchemy import Table, func, insert
from sqlalchemy.engine import Connection

from mailstack.store.db import LARGE_BODY, large_body

CHUNK = 1024 * 1024        # octets per incremental blob write


def insert_with_body(conn: Connection, table: Table, values: dict, body, statement=None
                     ) -> int:
    """INSERT ``values`` and ``body`` (the column named body) into ``table``; the new id.

    ``statement`` is ``insert(table)`` built once, for the common small case."""
    size = len(body)
    if size < LARGE_BODY or conn.dialect.name != "sqlite":
        data = body if isinstance(body, bytes) else body.read()
        statement = statement if statement is not None else insert(table)
        row_id = conn.execute(statement, {**values, "body": data}).inserted_primary_key[0]
        large_body(conn, size)
        return row_id
    row_id = conn.execute(insert(table).values(body=func.zeroblob(size)),
                          values).inserted_primary_key[0]
    with conn.connection.driver_connection.blobopen(table.name, "body", row_id) as blob:
        for piece in _pieces(body):
            blob.write(piece)
    return row_id


def _pieces(body):
    if not isinstance(body, bytes):
        return body.chunks(CHUNK)
    view = memoryview(body)
    return (view[start:start + CHUNK] for start in range(0, len(body), CHUNK))
