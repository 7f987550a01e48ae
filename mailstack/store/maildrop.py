"""The POP3 maildrop: an exclusive lock, a snapshot at login, deletions applied at QUIT.

Why a lock in the database: RFC 1939 §8 gives a POP3 session exclusive access, and two
mailstack processes may share the database.  A lock expires, so a crashed process cannot
lock a customer out forever; a live session refreshes it.  Each lock also names the node
that took it (``protocols/pop3_lease.py`` says what a node is), so that a node starting
again frees at once what it held when it died, and a node stopping frees what it holds
(``release_node``), instead of leaving its users locked out until the expiry.
Why a snapshot: POP3 message numbers must not change during a session (new mail appears
at the next login), and the sizes LIST reports must be the sizes RETR sends.

Why the statements are built once (issue 16): building a SQLAlchemy statement (bind
parameters, cache key) cost more than running it, and a login ran five of them (now two:
``open_maildrop``); the snapshot's rows are fetched at once into plain tuples (a frozen
dataclass per message was a tenth of a login's CPU with 200 messages); the read-ahead's
``bodies`` statement, built per batch, was a tenth of a RETR session's instructions.
"""

from __future__ import annotations

from datetime import datetime
from itertools import repeat
from typing import NamedTuple

from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mailstack.store import mailboxes, vanished
from mailstack.store.schema import folders, mailbox_locks, messages


class InUse(Exception):
    """Another session holds the maildrop."""


class Entry(NamedTuple):
    id: int
    guid: str
    size: int


_locks = mailbox_locks.c
_EXPIRED = delete(mailbox_locks).where(_locks.account_id == bindparam("account_id"),
                                       _locks.expires_at <= bindparam("now"))
_HOLDER = select(_locks.holder).where(_locks.account_id == bindparam("account_id"))
_TAKE = insert(mailbox_locks)
_SNAPSHOT = (select(messages.c.id, messages.c.guid, messages.c.size)
             .where(messages.c.folder_id == bindparam("folder_id")).order_by(messages.c.uid))

# A read-ahead batch of RETR (``pop3_read_ahead``): built once, the ids bound as a list.
_BODIES = (select(messages.c.id, messages.c.body).select_from(messages.join(folders))
           .where(messages.c.id.in_(bindparam("ids", expanding=True)),
                  folders.c.account_id == bindparam("account_id")))


def _take_or_take_over(dialect):
    """One statement for the three above: insert the lock, or take over an expired one;
    no row returned when a live one is held (both dialects have INSERT ... ON CONFLICT
    and RETURNING; SQLite since 3.35)."""
    take = dialect.insert(mailbox_locks)
    return take.on_conflict_do_update(
        index_elements=[_locks.account_id],
        set_={"holder": take.excluded.holder, "expires_at": take.excluded.expires_at,
              "node": take.excluded.node},
        where=_locks.expires_at <= bindparam("now")).returning(_locks.account_id)


_UPSERT = {"sqlite": _take_or_take_over(sqlite), "postgresql": _take_or_take_over(postgresql)}
# The INBOX's messages, its id found in the same statement.
_INBOX_SNAPSHOT = (select(messages.c.id, messages.c.guid, messages.c.size)
                   .where(messages.c.folder_id == select(folders.c.id).where(
                       folders.c.account_id == bindparam("account_id"),
                       folders.c.name == mailboxes.INBOX).scalar_subquery())
                   .order_by(messages.c.uid))
_REFRESH = (update(mailbox_locks).where(_locks.account_id == bindparam("of_account"),
                                        _locks.holder == bindparam("of_holder"))
            .values(expires_at=bindparam("expires")))
_RELEASE = delete(mailbox_locks).where(_locks.account_id == bindparam("account_id"),
                                       _locks.holder == bindparam("holder"))


def open_maildrop(conn: Connection, account_id: int, holder: str, now: datetime,
                  expires: datetime, node: str | None = None) -> list[Entry]:
    """Take the lock (or take over an expired one) and snapshot the INBOX.

    Two statements on SQLite and PostgreSQL (issue 16: five took a fifth of a login's
    store time): the lock taken by an upsert that changes no row while a live lock is held,
    and the snapshot with the INBOX's id found inside it.
    """
    upsert = _UPSERT.get(conn.dialect.name)
    lock = {"account_id": account_id, "holder": holder, "expires_at": expires, "node": node}
    if upsert is None:
        conn.execute(_EXPIRED, {"account_id": account_id, "now": now})
        held = conn.execute(_HOLDER, {"account_id": account_id}).scalar()
        if held is not None:
            raise InUse(held)
        conn.execute(_TAKE, lock)
    elif conn.execute(upsert, {**lock, "now": now}).first() is None:
        raise InUse(conn.execute(_HOLDER, {"account_id": account_id}).scalar())
    rows = conn.execute(_INBOX_SNAPSHOT, {"account_id": account_id}).all()
    # Entry._make row by row, but in C: half the time for the 200 rows of a busy INBOX.
    return list(map(tuple.__new__, repeat(Entry), rows))


def refresh(conn: Connection, account_id: int, holder: str, expires: datetime) -> bool:
    return conn.execute(_REFRESH, {"of_account": account_id, "of_holder": holder,
                                   "expires": expires}).rowcount == 1


def bodies(conn: Connection, account_id: int, message_ids, encode=bytes) -> dict[int, bytes]:
    """The stored messages that still exist (IMAP may have removed some meanwhile), each
    passed through ``encode`` here, in the store's thread (POP3 dot-stuffs them)."""
    rows = conn.execute(_BODIES, {"ids": list(message_ids), "account_id": account_id}).all()
    return {message_id: encode(bytes(body)) for message_id, body in rows}


def close_maildrop(conn: Connection, account_id: int, holder: str, delete_ids) -> int:
    """Apply the deletions and release the lock, in one transaction (the QUIT)."""
    ids = list(delete_ids)
    deleted = 0
    if ids:
        own = select(folders.c.id).where(folders.c.account_id == account_id)
        gone = conn.execute(delete(messages).where(
            and_(messages.c.id.in_(ids), messages.c.folder_id.in_(own)))
            .returning(messages.c.folder_id, messages.c.uid)).all()
        by_folder: dict[int, list[int]] = {}
        for folder_id, uid in gone:
            by_folder.setdefault(folder_id, []).append(uid)
        for folder_id, uids in by_folder.items():
            vanished.expunged(conn, folder_id, uids)    # modseq bump, QRESYNC's record
        deleted = len(gone)
    release(conn, account_id, holder)
    return deleted


def release(conn: Connection, account_id: int, holder: str) -> None:
    conn.execute(_RELEASE, {"account_id": account_id, "holder": holder})


def release_node(conn: Connection, node: str) -> int:
    """Free every lock the node holds (start-up after a crash, or shutdown); the count."""
    return conn.execute(delete(mailbox_locks).where(mailbox_locks.c.node == node)).rowcount
