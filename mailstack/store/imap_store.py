"""The SQL the IMAP front end needs beyond ``mailboxes``: folder management, flag updates,
expunge, copy and STATUS counts -- each one short transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.engine import Connection

from mailstack.store import changes, directory, mailboxes, routes, spam_learning
from mailstack.store.message_search import flag_is
from mailstack.store.errors import Conflict, NotFound, OverQuota
from mailstack.store.schema import (
    folders, message_headers, message_structure, message_text, messages,
)


CHUNK = 500     # ids per IN (...): SQLite allows 32,766 bind parameters in one statement


def open_folder(conn: Connection, account_id: int, name: str, read_write: bool):
    """(FolderInfo, [MessageInfo], first \\Recent UID) or None: what SELECT and EXAMINE
    need, in one transaction.  SELECT claims the recent messages for its session."""
    folder = mailboxes.get_folder(conn, account_id, name)
    if folder is None:
        return None
    infos = mailboxes.list_messages(conn, folder.id)
    first_recent = folder.recent_uid + 1
    if read_write and infos and infos[-1].uid > folder.recent_uid:
        claim_recent(conn, folder.id, infos[-1].uid)
    return folder, infos, first_recent


def claim_recent(conn: Connection, folder_id: int, up_to: int) -> int:
    """A session with the folder read-write saw messages up to UID ``up_to``: the first UID
    that is \\Recent for it (those before were someone else's, RFC 3501 §2.3.2)."""
    before = conn.execute(select(folders.c.recent_uid).where(folders.c.id == folder_id)
                          .with_for_update()).scalar() or 0
    if up_to > before:
        conn.execute(update(folders).where(folders.c.id == folder_id).values(recent_uid=up_to))
    return before + 1


def changes_since(conn: Connection, account_id: int, folder_id: int, modseq: int,
                  known_count: int, last_uid: int):
    """What a session holding a snapshot must learn: (folder, changed rows, alive UIDs or None).

    Reads only the rows whose modseq passed ``modseq`` (new mail, flag changes); expunges
    are inferred from the count and only then are the ids listed.  The folder row is read
    first, so a change committed meanwhile is seen now or at the next wake, never lost.
    A read: ten sessions on one folder each catch up after every write to it.
    """
    folder = mailboxes.get_folder_by_id(conn, account_id, folder_id)
    if folder is None:
        return None
    total = conn.execute(select(func.count(messages.c.id))
                         .where(messages.c.folder_id == folder_id)).scalar()
    changed = mailboxes.list_messages(conn, folder_id, since_modseq=modseq)
    arrived = sum(1 for m in changed if m.uid > last_uid)
    alive = None
    if known_count + arrived != total:
        alive = set(conn.execute(select(messages.c.uid)     # UIDs: SQLite reuses a last id
                                 .where(messages.c.folder_id == folder_id)).scalars())
    return folder, changed, alive


def update_flags(conn: Connection, folder_id: int, message_ids, mode: str, flags
                 ) -> dict[int, frozenset]:
    """STORE applied to what is stored, not to a session's copy (RFC 3501 §6.4.6): mode
    "+" adds, "-" removes, "=" replaces.  Rows are locked while read (FOR UPDATE on
    PostgreSQL; SQLite's write transaction holds the database), so two sessions changing
    different flags of one message both win.  Returns each message's flags afterwards."""
    return _change_flags(conn, folder_id, message_ids, mode, flags)[0]


def mark_seen(conn: Connection, folder_id: int, message_ids) -> dict[int, frozenset]:
    """FETCH BODY[] sets \\Seen (RFC 3501 §6.4.5): the new flags of the messages it changed."""
    result, written = _change_flags(conn, folder_id, message_ids, "+", {"\\Seen"})
    return {i: result[i] for i in written}


def _change_flags(conn: Connection, folder_id: int, message_ids, mode: str, flags):
    flags = mailboxes.canonical_flags(flags)
    ids = list(message_ids)
    result, writes = {}, {}
    for start in range(0, len(ids), CHUNK):         # bound the bind parameters per query
        rows = conn.execute(select(messages.c.id, messages.c.flags)
                            .where(messages.c.id.in_(ids[start:start + CHUNK]),
                                   messages.c.folder_id == folder_id)
                            .with_for_update()).all()
        for row in rows:
            old = mailboxes.parse_flags(row.flags)
            new = flags if mode == "=" else old | flags if mode == "+" else old - flags
            result[row.id] = frozenset(new)
            if new != old:
                writes[row.id] = new
    store_flags(conn, folder_id, writes)
    return result, writes


def append_named(conn: Connection, account_id: int, name: str, body, at: datetime,
                 flags) -> tuple[mailboxes.FolderInfo, mailboxes.MessageInfo]:
    """IMAP APPEND into a folder by name: NotFound, or OverQuota when there is no room."""
    folder = mailboxes.require_folder(conn, account_id, name)
    return folder, append(conn, account_id, folder.id, body, at, flags)


def fetch_data(conn: Connection, message_ids, bodies: bool, structures: bool = True
               ) -> dict[int, tuple]:
    """{message id: (body or None, structure JSON or None)} for the messages still stored.
    Given {id: UID}, a row whose UID differs is another message (SQLite reuses the id of
    a deleted last row) and is left out."""
    ids = list(message_ids)
    if not ids:
        return {}
    columns = [messages.c.id, messages.c.uid]
    source = messages
    if structures:
        columns.append(message_structure.c.structure)
        source = messages.outerjoin(message_structure,
                                    message_structure.c.message_id == messages.c.id)
    if bodies:
        columns.append(messages.c.body)
    rows = conn.execute(select(*columns).select_from(source).where(messages.c.id.in_(ids)))
    uids = message_ids if isinstance(message_ids, dict) else {}
    return {row.id: (bytes(row.body) if bodies else None,
                     row.structure if structures else None)
            for row in rows if uids.get(row.id, row.uid) == row.uid}


def quota(conn: Connection, account_id: int) -> tuple[int, int | None]:
    """(bytes used over all folders, the quota in bytes or None)."""
    return directory.mailbox_usage(conn, account_id)[1], directory.quota_of(conn, account_id)


def _check_room(conn: Connection, account_id: int, size: int) -> None:
    room = routes.room_left(conn, [account_id])
    if room is not None and size > room:
        raise OverQuota(f"{size} bytes do not fit in {room}")


def append(conn: Connection, account_id: int, folder_id: int, body, at: datetime,
           flags) -> mailboxes.MessageInfo:
    """IMAP APPEND: refused with OverQuota when the account's quota has no room for it.

    ``body`` is the message's ``bytes`` or the ``Spool`` it arrived in, stored as SMTP's
    DATA is (``mailboxes.spooled_facts``)."""
    _check_room(conn, account_id, len(body))
    if isinstance(body, bytes):
        return mailboxes.append(conn, folder_id, body, at, flags)
    body, facts = mailboxes.spooled_facts(conn, body.with_prefix(b""))
    return mailboxes.append(conn, folder_id, body, at, flags, facts)


_UNSEEN = flag_is("\\Seen", False)
_DELETED = flag_is("\\Deleted", True)


def status(conn: Connection, account_id: int, name: str, items) -> dict | None:
    """STATUS without loading the folder: each requested count is one aggregate, UNSEEN and
    DELETED over their partial indexes, SIZE over (folder_id, size).  Clients STATUS every
    folder on a timer; a snapshot of a 50,000-message folder each time would be wasted."""
    folder = mailboxes.get_folder(conn, account_id, name)
    if folder is None:
        return None
    wanted = {i.upper() for i in items}
    in_folder = messages.c.folder_id == folder.id

    def one(column, *where):
        return conn.execute(select(column).where(in_folder, *where)).scalar() or 0
    facts = {"UIDNEXT": folder.uidnext, "UIDVALIDITY": folder.uidvalidity,
             "HIGHESTMODSEQ": folder.modseq}      # RFC 7162 §3.1.2
    if "RECENT" in wanted:     # not yet seen by a session (RFC 3501 §2.3.2)
        facts["RECENT"] = one(func.count(), messages.c.uid > folder.recent_uid)
    if "MESSAGES" in wanted:
        facts["MESSAGES"] = one(func.count())
    if "UNSEEN" in wanted:
        facts["UNSEEN"] = one(func.count(), _UNSEEN)
    if "SIZE" in wanted:
        facts["SIZE"] = one(func.sum(messages.c.size))
    if "DELETED" in wanted:
        facts["DELETED"] = one(func.count(), _DELETED)
    if "DELETED-STORAGE" in wanted:
        facts["DELETED-STORAGE"] = one(func.sum(messages.c.size), _DELETED) // 1024
    return {i.upper(): facts[i.upper()] for i in items if i.upper() in facts}


def store_flags(conn: Connection, folder_id: int, new_flags: dict[int, frozenset]) -> None:
    """One UPDATE per distinct resulting flag set (``1:* +FLAGS`` is usually one statement)."""
    by_flags: dict[str, list[int]] = {}
    for message_id, flags in new_flags.items():
        by_flags.setdefault(mailboxes.flags_text(flags), []).append(message_id)
    if not by_flags:
        return
    modseq = changes.touch(conn, [folder_id]).get(folder_id, 0)
    for flags, ids in by_flags.items():
        for start in range(0, len(ids), CHUNK):
            conn.execute(update(messages).where(messages.c.id.in_(ids[start:start + CHUNK]),
                                                messages.c.folder_id == folder_id)
                         .values(flags=flags, modseq=modseq))


def expunge(conn: Connection, folder_id: int, only_ids=None) -> list[int]:
    """Delete the \\Deleted messages of the folder (UID EXPUNGE: only among ``only_ids``)."""
    query = select(messages.c.id).where(messages.c.folder_id == folder_id, _DELETED)
    if only_ids is not None:
        query = query.where(messages.c.id.in_(list(only_ids)))
    doomed = list(conn.execute(query).scalars())
    mailboxes.delete_messages(conn, folder_id, doomed)
    return doomed


def copy_messages(conn: Connection, account_id: int, message_ids, target: str,
                  quota_checked: bool = True, learning=None
                  ) -> tuple[mailboxes.FolderInfo, list[int], list[int]]:
    """Copy into ``target`` with new UIDs (and GUIDs): (target, source ids copied, new UIDs).

    The source ids come back in ``message_ids`` order, so COPYUID pairs them with the UIDs.
    ``learning`` (a ``spam_learning.Recording``): a copy into or out of \\Junk queues its
    learns in this transaction.
    """
    folder = mailboxes.get_folder(conn, account_id, target)
    if folder is None:
        raise NotFound(target)
    ids = list(message_ids)
    if not ids:
        return folder, [], []
    rows = conn.execute(select(messages.c.id, messages.c.internal_date, messages.c.size,
                               messages.c.flags, messages.c.body, messages.c.folder_id)
                        .where(messages.c.id.in_(ids))).all()
    by_id = {r.id: r for r in rows}
    if not by_id:
        return folder, [], []
    if quota_checked:
        _check_room(conn, account_id, sum(r.size for r in rows))
    first, modseq = mailboxes.allocate_uids(conn, folder.id, len(by_id))
    uids = []
    for offset, message_id in enumerate(i for i in ids if i in by_id):
        r = by_id[message_id]
        copy_id = conn.execute(insert(messages).values(
            folder_id=folder.id, uid=first + offset, guid=uuid.uuid4().hex,
            internal_date=r.internal_date, size=r.size, flags=r.flags, body=r.body,
            modseq=modseq)).inserted_primary_key[0]
        for side in (message_headers, message_text, message_structure):   # copied as is
            columns = [c for c in side.c if c.name != "message_id"]
            conn.execute(insert(side).from_select(
                ["message_id", *(c.name for c in columns)],
                select(literal(copy_id), *columns).where(side.c.message_id == message_id)))
        uids.append(first + offset)
    if learning is not None:
        spam_learning.record_copy(conn, account_id, rows[0].folder_id, folder.special_use,
                                  [r.body for r in rows], learning)
    return folder, [i for i in ids if i in by_id], uids


def move_messages(conn: Connection, account_id: int, source_id: int, message_ids, target: str,
                  learning=None):
    """MOVE (RFC 6851): copy and expunge in one transaction; same result as copy_messages.

    No quota check: the account's usage does not grow.
    """
    result = copy_messages(conn, account_id, message_ids, target, quota_checked=False,
                           learning=learning)
    mailboxes.delete_messages(conn, source_id, result[1])
    return result


def create_with_parents(conn: Connection, account_id: int, name: str, at: datetime,
                        delimiter: str = "/", special_use: str | None = None) -> int:
    """CREATE a/b/c also creates a and a/b when missing (RFC 3501 §6.3.3); none of them is
    subscribed (SUBSCRIBE is the client's own choice, RFC 3501 §6.3.6)."""
    if mailboxes.get_folder(conn, account_id, name) is not None:
        raise Conflict(f"{name} already exists")
    parts = name.split(delimiter)
    for depth in range(1, len(parts)):
        parent = delimiter.join(parts[:depth])
        if parent and mailboxes.get_folder(conn, account_id, parent) is None:
            mailboxes.create_folder(conn, account_id, parent, at, subscribed=False)
    return mailboxes.create_folder(conn, account_id, name, at, special_use=special_use,
                                   subscribed=False)


def delete_folder(conn: Connection, account_id: int, name: str) -> None:
    folder = mailboxes.require_folder(conn, account_id, name)
    if folder.name == mailboxes.INBOX:
        raise Conflict("INBOX cannot be deleted")
    conn.execute(delete(messages).where(messages.c.folder_id == folder.id))
    conn.execute(delete(folders).where(folders.c.id == folder.id))


def rename_folder(conn: Connection, account_id: int, old: str, new: str, at: datetime) -> None:
    folder = mailboxes.require_folder(conn, account_id, old)
    if folder.name == mailboxes.INBOX:
        raise Conflict("renaming INBOX is not supported")
    if mailboxes.get_folder(conn, account_id, new) is not None:
        raise Conflict(f"{new} already exists")
    prefix = folder.name + "/"
    children = conn.execute(select(folders.c.id, folders.c.name).where(
        folders.c.account_id == account_id, folders.c.name.startswith(prefix, autoescape=True))).all()
    conn.execute(update(folders).where(folders.c.id == folder.id).values(name=new))
    for child in children:
        conn.execute(update(folders).where(folders.c.id == child.id)
                     .values(name=new + "/" + child.name[len(prefix):]))


def set_subscribed(conn: Connection, account_id: int, name: str, subscribed: bool) -> None:
    folder = mailboxes.require_folder(conn, account_id, name)
    conn.execute(update(folders).where(folders.c.id == folder.id).values(subscribed=subscribed))


def folder_count(conn: Connection, account_id: int) -> int:
    return int(conn.execute(select(func.count(folders.c.id))
                            .where(folders.c.account_id == account_id)).scalar())
