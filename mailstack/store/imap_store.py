"""The SQL the IMAP front end needs beyond ``mailboxes``: folder management, flag updates,
expunge, copy and STATUS counts -- each one short transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from mailstack.store import mailboxes
from mailstack.store.errors import Conflict, NotFound
from mailstack.store.schema import folders, messages


def open_folder(conn: Connection, account_id: int, name: str):
    """(FolderInfo, [MessageInfo]) or None: what SELECT and EXAMINE need, in one read."""
    folder = mailboxes.get_folder(conn, account_id, name)
    if folder is None:
        return None
    return folder, mailboxes.list_messages(conn, folder.id)


def status(conn: Connection, account_id: int, name: str) -> dict | None:
    folder = mailboxes.get_folder(conn, account_id, name)
    if folder is None:
        return None
    infos = mailboxes.list_messages(conn, folder.id)
    return {"MESSAGES": len(infos), "RECENT": 0, "UIDNEXT": folder.uidnext,
            "UIDVALIDITY": folder.uidvalidity,
            "UNSEEN": sum(1 for m in infos if "\\Seen" not in m.flags)}


def store_flags(conn: Connection, folder_id: int, changes: dict[int, frozenset]) -> None:
    """One UPDATE per distinct resulting flag set (``1:* +FLAGS`` is usually one statement)."""
    by_flags: dict[str, list[int]] = {}
    for message_id, flags in changes.items():
        by_flags.setdefault(mailboxes.flags_text(flags), []).append(message_id)
    for text, ids in by_flags.items():
        conn.execute(update(messages).where(messages.c.id.in_(ids),
                                            messages.c.folder_id == folder_id)
                     .values(flags=text))


def expunge(conn: Connection, folder_id: int) -> list[int]:
    """Delete every \\Deleted message of the folder; the ids removed."""
    rows = conn.execute(select(messages.c.id, messages.c.flags)
                        .where(messages.c.folder_id == folder_id))
    doomed = [r.id for r in rows if "\\Deleted" in r.flags.split()]
    if doomed:
        conn.execute(delete(messages).where(messages.c.id.in_(doomed)))
    return doomed


def copy_messages(conn: Connection, account_id: int, message_ids, target: str) -> list[int]:
    """Copy into ``target`` with new UIDs (and new GUIDs); the new UIDs in order."""
    folder = mailboxes.get_folder(conn, account_id, target)
    if folder is None:
        raise NotFound(target)
    ids = list(message_ids)
    if not ids:
        return []
    rows = conn.execute(select(messages.c.id, messages.c.internal_date, messages.c.size,
                               messages.c.flags, messages.c.body)
                        .where(messages.c.id.in_(ids))).all()
    by_id = {r.id: r for r in rows}
    first = conn.execute(update(folders).where(folders.c.id == folder.id)
                         .values(uidnext=folders.c.uidnext + len(by_id))
                         .returning(folders.c.uidnext - len(by_id))).scalar()
    uids = []
    for offset, message_id in enumerate(i for i in ids if i in by_id):
        r = by_id[message_id]
        conn.execute(insert(messages).values(
            folder_id=folder.id, uid=first + offset, guid=uuid.uuid4().hex,
            internal_date=r.internal_date, size=r.size, flags=r.flags, body=r.body))
        uids.append(first + offset)
    return uids


def create_with_parents(conn: Connection, account_id: int, name: str, at: datetime,
                        delimiter: str = "/") -> int:
    """CREATE a/b/c also creates a and a/b when missing (RFC 3501 §6.3.3)."""
    if mailboxes.get_folder(conn, account_id, name) is not None:
        raise Conflict(f"{name} already exists")
    parts = name.split(delimiter)
    for depth in range(1, len(parts)):
        parent = delimiter.join(parts[:depth])
        if parent and mailboxes.get_folder(conn, account_id, parent) is None:
            mailboxes.create_folder(conn, account_id, parent, at)
    return mailboxes.create_folder(conn, account_id, name, at)


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
