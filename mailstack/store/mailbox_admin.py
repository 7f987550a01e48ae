"""An account's folders as an administrator reads and prunes them (doveadm mailbox, fetch,
search, expunge), each one transaction.

Why here and not in the CLI: the admin commands must see a folder exactly as IMAP does, so
they run the same store code -- the counts are ``imap_store.status`` (IMAP STATUS), a
search is ``message_search.search`` (IMAP SEARCH, the same criteria tree), and an expunge
is ``mailboxes.delete_messages``, which bumps the folder's modseq and sends the change
notice (``changes.touch``) exactly as IMAP EXPUNGE does, so every IMAP session on the
folder, in any process, reports the messages gone.

\\Recent belongs to sessions (RFC 3501 §2.3.2); for an administrator a message is recent
while no session has seen it, i.e. its UID is above the folder's ``recent_uid``.  A query
that names RECENT, NEW or OLD is given as a function of that set (the IMAP grammar's
``resolve_recent``), so the store does not import protocol code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mailstack.message.structure import Part
from mailstack.store import directory, imap_store, mailboxes, message_search
from mailstack.store.schema import message_structure

STATUS_ITEMS = ("MESSAGES", "RECENT", "UNSEEN", "SIZE", "UIDNEXT", "UIDVALIDITY")


@dataclass(frozen=True)
class Summary:
    """One message as ``mailstack mailbox fetch`` lists it: header texts as written
    (encoded words left for the reader to decode)."""

    id: int
    uid: int
    flags: tuple[str, ...]
    internal_date: datetime
    size: int
    date: str
    from_: str
    to: str
    subject: str
    message_id: str


def _folder(conn: Connection, address: str, name: str) -> mailboxes.FolderInfo:
    account = directory.require_account(conn, address)
    return mailboxes.require_folder(conn, account.id, name)


def folders_with_counts(conn: Connection, address: str) -> list[tuple[str, dict]]:
    """Every folder of the account with its STATUS counts, by name."""
    account = directory.require_account(conn, address)
    return [(folder.name, imap_store.status(conn, account.id, folder.name, STATUS_ITEMS))
            for folder in mailboxes.list_folders(conn, account.id)]


def status(conn: Connection, address: str, name: str) -> dict:
    """IMAP STATUS of one folder (MESSAGES, RECENT, UNSEEN, SIZE, UIDNEXT, UIDVALIDITY)."""
    account = directory.require_account(conn, address)
    mailboxes.require_folder(conn, account.id, name)
    return imap_store.status(conn, account.id, name, STATUS_ITEMS)


def _matches(conn: Connection, folder: mailboxes.FolderInfo, criteria) -> list:
    """The folder's messages (MessageInfo, in UID order) that ``criteria`` matches."""
    infos = mailboxes.list_messages(conn, folder.id)
    uids = [m.uid for m in infos]
    if callable(criteria):
        criteria = criteria(frozenset(u for u in uids if u > folder.recent_uid))
    found = set(message_search.search(conn, folder.id, criteria, uids))
    return [m for m in infos if m.uid in found]


def search(conn: Connection, address: str, name: str, criteria) -> list[int]:
    """The UIDs that match, ascending; sequence numbers count over the whole folder."""
    return [m.uid for m in _matches(conn, _folder(conn, address, name), criteria)]


def fetch(conn: Connection, address: str, name: str, criteria) -> list[Summary]:
    """What the matching messages are, from their stored ENVELOPE (no body is read)."""
    found = _matches(conn, _folder(conn, address, name), criteria)
    structures = {}
    for start in range(0, len(found), imap_store.CHUNK):
        ids = [m.id for m in found[start:start + imap_store.CHUNK]]
        structures.update(conn.execute(
            select(message_structure.c.message_id, message_structure.c.structure)
            .where(message_structure.c.message_id.in_(ids))).all())
    return [_summary(m, structures.get(m.id)) for m in found]


def body(conn: Connection, message_id: int) -> bytes | None:
    """The stored message as it came (None: expunged meanwhile)."""
    return mailboxes.get_bodies(conn, [message_id]).get(message_id)


def expunge(conn: Connection, address: str, name: str, criteria) -> int:
    """Delete the matching messages (whatever their flags) as IMAP EXPUNGE deletes; how many."""
    folder = _folder(conn, address, name)
    return mailboxes.delete_messages(conn, folder.id, [m.id for m in _matches(conn, folder,
                                                                              criteria)])


def _summary(info: mailboxes.MessageInfo, structure: str | None) -> Summary:
    envelope = Part.from_json(structure).envelope if structure else None

    def text(value) -> str:
        return value.decode("utf-8", "replace") if value else ""
    return Summary(info.id, info.uid, tuple(sorted(info.flags)), info.internal_date, info.size,
                   text(envelope and envelope.date), _addresses(envelope and envelope.from_),
                   _addresses(envelope and envelope.to), text(envelope and envelope.subject),
                   text(envelope and envelope.message_id))


def _addresses(found) -> str:
    """ENVELOPE addresses as ``Name <mailbox@host>``, comma-separated (groups flattened)."""
    out = []
    for name, _route, mailbox, host in found or ():
        if mailbox is None or host is None:          # a group's start or end marker
            continue
        where = f"{mailbox.decode('utf-8', 'replace')}@{host.decode('utf-8', 'replace')}"
        out.append(f"{name.decode('utf-8', 'replace')} <{where}>" if name else where)
    return ", ".join(out)

