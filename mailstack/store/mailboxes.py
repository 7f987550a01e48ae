"""Folders and the messages in them: the one place mail is written.

Why: every front end -- SMTP delivery, IMAP APPEND/COPY, POP3 deletions -- ends up here, so
the invariants live in one module: per-folder IMAP UIDs that only grow (RFC 3501 §2.3.1.1),
a UIDVALIDITY fixed at folder creation, and a GUID per message that never changes (the
POP3 UIDL).  UIDs are allocated with ``UPDATE … RETURNING`` so two writers can never get the
same one, on SQLite or PostgreSQL.

A message delivered to several accounts is analysed once (``MessageFacts``: search
headers, search text, MIME structure) and each copy reuses the result; a large body is
written without a driver copy that outlives the INSERT (blobs.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, case, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from mailstack.store import blobs, changes, vanished
from mailstack.store.db import LARGE_BODY, large_body
from mailstack.store.errors import Conflict, NotFound
from mailstack.store.search_facts import body_text, search_facts
from mailstack.message.head import read_head
from mailstack.message.structure import analyse
from mailstack.store.schema import (
    SYSTEM_FLAGS, accounts, folders, message_headers, message_structure, message_text, messages,
)

INBOX = "INBOX"
DEFAULT_FOLDERS = (
    (INBOX, None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
)


@dataclass(frozen=True)
class FolderInfo:
    id: int
    name: str
    uidvalidity: int
    uidnext: int
    special_use: str | None
    subscribed: bool
    modseq: int = 0
    recent_uid: int = 0


@dataclass(frozen=True)
class MessageInfo:
    """A message without its body: what listings and flag updates need."""

    id: int
    uid: int
    guid: str
    internal_date: datetime
    size: int
    flags: frozenset[str]
    modseq: int = 1          # of the last change to the message (RFC 7162 MODSEQ)


_FOLDER_COLUMNS = (folders.c.id, folders.c.name, folders.c.uidvalidity, folders.c.uidnext,
                   folders.c.special_use, folders.c.subscribed, folders.c.modseq,
                   folders.c.recent_uid)
_MESSAGE_COLUMNS = (messages.c.id, messages.c.uid, messages.c.guid, messages.c.internal_date,
                    messages.c.size, messages.c.flags, messages.c.modseq)


@dataclass(frozen=True)
class MessageFacts:
    """What is stored beside a message's body, computed once however many copies."""

    search_headers: str
    sent_at: datetime | None
    body_text: str
    structure: str           # message/structure.py Part, as JSON


def facts_of(body: bytes) -> MessageFacts:
    """The facts of a message, its header read once (message/head.py) for all of them."""
    head = read_head(body)
    structure = analyse(body, head)
    headers, sent_at = search_facts(body, head)
    return MessageFacts(headers, sent_at, body_text(body, structure), structure.to_json())


def spooled_facts(conn: Connection, body) -> tuple[object, MessageFacts]:
    """The facts of a message still in its spool (a ``SpooledMessage``), and what to store
    (``prepared_facts``)."""
    return prepared_facts(body, conn.dialect.name)


def prepared_facts(body, dialect: str) -> tuple[object, MessageFacts]:
    """``spooled_facts`` without a connection: SMTP delivery computes the facts before it
    takes the writer lock (routing.py), since they need no database.

    The message is read whole once, for its facts.  On SQLite a large one is then stored
    from the spool (blobs.py writes it in pieces), so the message and SQLite's record of
    it are not in memory together; a small one, and any elsewhere (the driver needs the
    whole message as a parameter), is stored from the octets just read, not read a
    second time (two reads left two 25 MB buffers behind on PostgreSQL)."""
    message = body.read()
    facts = facts_of(message)
    if dialect == "sqlite" and len(message) >= LARGE_BODY:
        return body, facts
    return message, facts


_CANONICAL = {flag.lower(): flag for flag in SYSTEM_FLAGS}


def canonical_flags(flags) -> frozenset[str]:
    """System flags in their one spelling (IMAP flags are case-insensitive, RFC 3501 §2.3.2;
    the flag searches and their indexes match the stored spelling); ``\\Recent`` is never
    stored (it belongs to a session)."""
    return frozenset(_CANONICAL.get(f.lower(), f) for f in flags if f.lower() != "\\recent")


def flags_text(flags) -> str:
    return " ".join(sorted(canonical_flags(flags)))


def parse_flags(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _message(row) -> MessageInfo:
    return MessageInfo(row.id, row.uid, row.guid, row.internal_date, row.size,
                       parse_flags(row.flags), row.modseq)


def uidvalidity_for(at: datetime) -> int:
    """A UIDVALIDITY from the creation time: a re-created folder never reuses an old one."""
    return max(1, int(at.timestamp()) & 0xFFFFFFFF)


def create_default_folders(conn: Connection, account_id: int, at: datetime) -> None:
    for name, special_use in DEFAULT_FOLDERS:
        create_folder(conn, account_id, name, at, special_use=special_use)


def create_folder(conn: Connection, account_id: int, name: str, at: datetime,
                  special_use: str | None = None, subscribed: bool = True) -> int:
    if get_folder(conn, account_id, name) is not None:
        raise Conflict(f"folder {name} already exists")
    # Higher than any the account's folders ever had, deleted ones included: a folder
    # created again within the same second must not reuse its predecessor's.
    following, by_time = accounts.c.last_uidvalidity + 1, uidvalidity_for(at)
    latest = conn.execute(update(accounts).where(accounts.c.id == account_id)
                          .values(last_uidvalidity=case((following > by_time, following),
                                                        else_=by_time))
                          .returning(accounts.c.last_uidvalidity)).scalar()
    validity = latest if latest is not None else uidvalidity_for(at)
    return conn.execute(insert(folders).values(    # modseq 1: RFC 7162's are positive
        account_id=account_id, name=name, uidvalidity=validity, uidnext=1, modseq=1,
        special_use=special_use, subscribed=subscribed)).inserted_primary_key[0]


# Statements on the delivery path are built once: building one per call (bind parameters,
# cache key) cost more Python time than executing it (benchmarks/imap_large.py, SMTP figures).
_FOLDER_BY_NAME = select(*_FOLDER_COLUMNS).where(folders.c.account_id == bindparam("account_id"),
                                                 folders.c.name == bindparam("name"))
_ALLOCATE_UIDS = (update(folders).where(folders.c.id == bindparam("folder_id"))
                  .values(uidnext=folders.c.uidnext + bindparam("count"),
                          modseq=folders.c.modseq + 1)
                  .returning(folders.c.uidnext, folders.c.modseq))
# Delivery's UIDs in one statement, the INBOX found by name as it is updated: a SELECT
# for the folder and then an UPDATE by its id cost two (issue 16).
_ALLOCATE_INBOX_UID = (update(folders).where(folders.c.account_id == bindparam("owner"),
                                             folders.c.name == INBOX)
                       .values(uidnext=folders.c.uidnext + 1, modseq=folders.c.modseq + 1)
                       .returning(folders.c.id, folders.c.uidnext, folders.c.modseq))
# A quarantined delivery's UIDs: the account's first folder marked \Junk (RFC 6154).
_ALLOCATE_JUNK_UID = (update(folders).where(folders.c.id == select(func.min(folders.c.id)).where(
    folders.c.account_id == bindparam("owner"),
    folders.c.special_use == "\\Junk").scalar_subquery())
                      .values(uidnext=folders.c.uidnext + 1, modseq=folders.c.modseq + 1)
                      .returning(folders.c.id, folders.c.uidnext, folders.c.modseq))
_INSERT_MESSAGE = insert(messages)
_INSERT_HEADERS = insert(message_headers)
_INSERT_TEXT = insert(message_text)
_INSERT_STRUCTURE = insert(message_structure)


def get_folder(conn: Connection, account_id: int, name: str) -> FolderInfo | None:
    if name.upper() == INBOX:
        name = INBOX
    row = conn.execute(_FOLDER_BY_NAME, {"account_id": account_id, "name": name}).first()
    return FolderInfo(*row) if row else None


def get_folder_by_id(conn: Connection, account_id: int, folder_id: int) -> FolderInfo | None:
    row = conn.execute(select(*_FOLDER_COLUMNS).where(
        folders.c.account_id == account_id, folders.c.id == folder_id)).first()
    return FolderInfo(*row) if row else None


def require_folder(conn: Connection, account_id: int, name: str) -> FolderInfo:
    folder = get_folder(conn, account_id, name)
    if folder is None:
        raise NotFound(f"no folder {name}")
    return folder


def list_folders(conn: Connection, account_id: int) -> list[FolderInfo]:
    rows = conn.execute(select(*_FOLDER_COLUMNS).where(folders.c.account_id == account_id)
                        .order_by(folders.c.name))
    return [FolderInfo(*row) for row in rows]


def allocate_uids(conn: Connection, folder_id: int, count: int = 1) -> tuple[int, int]:
    """Reserve ``count`` consecutive UIDs atomically and bump modseq: (first UID, modseq)."""
    row = conn.execute(_ALLOCATE_UIDS, {"folder_id": folder_id, "count": count}).first()
    if row is None:
        raise NotFound(f"folder {folder_id} vanished")
    changes.notice(conn, [folder_id])
    return int(row[0]) - count, int(row[1])


def append(conn: Connection, folder_id: int, body, internal_date: datetime,
           flags=(), facts: MessageFacts | None = None) -> MessageInfo:
    """Store a message in a folder.  ``body`` is its ``bytes``, or with ``facts`` given, a
    ``SpooledMessage`` (message/spool.py) written from its spool (blobs.py)."""
    uid, modseq = allocate_uids(conn, folder_id)
    return _insert(conn, folder_id, uid, modseq, body, internal_date, flags, facts)


def _insert(conn: Connection, folder_id: int, uid: int, modseq: int, body,
            internal_date: datetime, flags=(), facts: MessageFacts | None = None
            ) -> MessageInfo:
    """The rows of one message whose UID and modseq are allocated already."""
    guid = uuid.uuid4().hex
    text = flags_text(flags)
    facts = facts if facts is not None else facts_of(body)
    message_id = blobs.insert_with_body(conn, messages, dict(
        folder_id=folder_id, uid=uid, guid=guid, internal_date=internal_date,
        size=len(body), flags=text, modseq=modseq), body, _INSERT_MESSAGE)
    conn.execute(_INSERT_HEADERS, dict(message_id=message_id, search_headers=facts.search_headers,
                                       sent_at=facts.sent_at))
    conn.execute(_INSERT_TEXT, dict(message_id=message_id, body_text=facts.body_text))
    conn.execute(_INSERT_STRUCTURE, dict(message_id=message_id, structure=facts.structure))
    return MessageInfo(message_id, uid, guid, internal_date, len(body), parse_flags(text),
                       modseq)


def deliver(conn: Connection, account_ids, body, at: datetime,
            facts: MessageFacts | None = None, junk: bool = False) -> list[MessageInfo]:
    """Store one copy of ``body`` in the INBOX of each account, all or nothing; with
    ``junk``, in its \\Junk folder (the INBOX for an account that has none)."""
    stored = []
    for account_id in account_ids:
        row = None
        if junk:
            row = conn.execute(_ALLOCATE_JUNK_UID, {"owner": account_id}).first()
        if row is None:
            row = conn.execute(_ALLOCATE_INBOX_UID, {"owner": account_id}).first()
        if row is None:
            raise NotFound(f"no folder {INBOX}")
        folder_id, uidnext, modseq = row
        changes.notice(conn, [folder_id])
        facts = facts if facts is not None else facts_of(body)
        stored.append(_insert(conn, folder_id, int(uidnext) - 1, int(modseq), body, at,
                              facts=facts))
    return stored


def list_messages(conn: Connection, folder_id: int, since_modseq: int | None = None
                  ) -> list[MessageInfo]:
    query = select(*_MESSAGE_COLUMNS).where(messages.c.folder_id == folder_id)
    if since_modseq is not None:
        query = query.where(messages.c.modseq > since_modseq)
    rows = conn.execute(query.order_by(messages.c.uid))
    return [_message(row) for row in rows]


def get_bodies(conn: Connection, message_ids) -> dict[int, bytes]:
    ids = list(message_ids)
    if not ids:
        return {}
    rows = conn.execute(select(messages.c.id, messages.c.body).where(messages.c.id.in_(ids)))
    bodies = {row.id: bytes(row.body) for row in rows}
    large_body(conn, sum(map(len, bodies.values())))
    return bodies


def delete_messages(conn: Connection, folder_id: int, message_ids) -> int:
    ids = list(message_ids)
    if not ids:
        return 0
    uids = conn.execute(delete(messages).where(
        and_(messages.c.folder_id == folder_id, messages.c.id.in_(ids)))
        .returning(messages.c.uid)).scalars().all()
    vanished.expunged(conn, folder_id, uids)     # the modseq bump QRESYNC reads
    return len(uids)
