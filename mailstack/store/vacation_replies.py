"""When each sender was last answered by an account's Sieve vacation action.

Why in the database, and in the delivery's transaction: RFC 5230 §4.1 allows one reply
per sender (and response, §4.2) every ``:days``; the record must survive restarts, and
it is written in the transaction that stores the message and queues the reply
(``delivery/sieve_delivery.py``), so a crash leaves all three or none: a reply is never
sent for a message that was not stored, nor recorded without being queued.

Standards: RFC 5230 §4.1, §4.2.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from mailstack.store.schema import vacation_replies as table

HANDLE_LIMIT = 100      # the column's size; a longer handle is stored as its hash

_KEY = (table.c.account_id == bindparam("a"), table.c.sender == bindparam("s"),
        table.c.handle == bindparam("h"))
_LAST = select(table.c.replied_at).where(*_KEY)
_TOUCH = update(table).where(*_KEY).values(replied_at=bindparam("at"))


def stored_handle(handle: str) -> str:
    """The handle as stored: itself, or a digest when it is longer than the column."""
    if len(handle) <= HANDLE_LIMIT:
        return handle
    return "sha256:" + hashlib.sha256(handle.encode("utf-8")).hexdigest()


def _key(account_id: int, sender: str, handle: str) -> dict:
    return {"a": account_id, "s": sender.lower()[:320], "h": stored_handle(handle)}


def last_replied(conn: Connection, account_id: int, sender: str, handle: str
                 ) -> datetime | None:
    """When ``sender`` was last answered with ``handle`` (None: never)."""
    return conn.execute(_LAST, _key(account_id, sender, handle)).scalar()


def record(conn: Connection, account_id: int, sender: str, handle: str, at: datetime) -> None:
    """Remember that ``sender`` was answered at ``at`` (the delivery's transaction)."""
    key = _key(account_id, sender, handle)
    if conn.execute(_TOUCH, {**key, "at": at}).rowcount == 0:
        conn.execute(insert(table).values(account_id=key["a"], sender=key["s"],
                                          handle=key["h"], replied_at=at))
