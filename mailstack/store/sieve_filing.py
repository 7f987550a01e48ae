"""Where a Sieve script files an account's copy: a named folder (``fileinto``, made first
with ``:create``), INBOX or Junk (``keep``), with the script's IMAP flags.

Why in the store: delivery (``delivery/sieve_delivery.py``) acts on a script's outcome
inside the transaction that stores the message, and only the store speaks SQL.  The
common delivery path (``mailboxes.deliver``: INBOX found as its UID is allocated) stays
as it is for accounts without a script.

Standards: RFC 5228 §4.1 (fileinto), RFC 5490 §3.2 (:create), RFC 5232 §5 (:flags),
RFC 6154 (the \\Junk folder).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection

from mailstack.store import mailboxes
from mailstack.store.schema import folders

MAX_NAME = 512            # the column's size
_JUNK = select(func.min(folders.c.id)).where(folders.c.account_id == bindparam("owner"),
                                             folders.c.special_use == "\\Junk")
_NAMES = select(folders.c.name).where(folders.c.account_id == bindparam("owner"))


class FolderNames:
    """An account's folder names, read on the first question (``mailboxexists``, RFC
    5490 §3.1): a script that never asks costs no statement."""

    def __init__(self, conn: Connection, account_id: int):
        self._conn, self._account_id, self._names = conn, account_id, None

    def __contains__(self, name: object) -> bool:
        if self._names is None:
            self._names = {n for (n,) in self._conn.execute(_NAMES, {"owner": self._account_id})}
            self._names |= {mailboxes.INBOX, "inbox"}
        return name in self._names or (isinstance(name, str)
                                       and name.upper() == mailboxes.INBOX)


def acceptable(name: str) -> bool:
    """A folder name a script may create: not empty, no control characters, no empty
    hierarchy level ("/" is the delimiter), within the column."""
    return (0 < len(name) <= MAX_NAME and name.isprintable()
            and all(part.strip() for part in name.split("/")))


def kept_folder(conn: Connection, account_id: int, junk: bool) -> int:
    """The folder of a keep: Junk when spam filing or DMARC chose it (the account's first
    \\Junk folder; INBOX when it has none), else INBOX."""
    if junk:
        found = conn.execute(_JUNK, {"owner": account_id}).scalar()
        if found is not None:
            return found
    return mailboxes.require_folder(conn, account_id, mailboxes.INBOX).id


def named_folder(conn: Connection, account_id: int, name: str, create: bool,
                 at: datetime) -> int | None:
    """The folder ``name`` (created, with its parents, when ``create`` and missing), or
    None when it does not exist and may not or cannot be created."""
    folder = mailboxes.get_folder(conn, account_id, name)
    if folder is not None:
        return folder.id
    if not create or not acceptable(name):
        return None
    parts = name.split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if mailboxes.get_folder(conn, account_id, parent) is None:
            mailboxes.create_folder(conn, account_id, parent, at)
    return mailboxes.create_folder(conn, account_id, name, at)


def file_copy(conn: Connection, folder_id: int, body, facts, at: datetime, flags=()):
    """Store the copy (``body`` and its ``facts``, None: analysed here) in the folder
    with ``flags`` (``mailboxes.append``)."""
    return mailboxes.append(conn, folder_id, body, at, flags, facts)
