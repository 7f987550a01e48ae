"""What CONDSTORE and QRESYNC (RFC 7162) read and write: flags stored conditionally, and a
resync's changes read from the (folder_id, modseq) indexes.

Why apart from ``imap_store``: a conditional STORE must compare each message's modseq
with UNCHANGEDSINCE under the same row locks that change its flags (§3.1.3), and a
QRESYNC SELECT must cost the number of changes since the client's modseq, not the size
of the folder (§3.2.5): both are one transaction here, over ``messages.modseq`` and
``vanished`` (store/vanished.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mailstack.store import changes, imap_store, mailboxes, vanished
from mailstack.store.schema import messages


@dataclass(frozen=True)
class Stored:
    """A STORE's outcome: each message's flags and modseq afterwards, and the ids that
    failed UNCHANGEDSINCE (left as they were)."""

    flags: dict[int, frozenset]
    modseqs: dict[int, int]
    modified: list[int]


def store_flags(conn: Connection, folder_id: int, message_ids, mode: str, flags,
                unchanged_since: int | None = None) -> Stored:
    """STORE as ``imap_store.update_flags`` (on the stored flags, rows locked), skipping
    the messages changed after ``unchanged_since``; a message whose flags do not change
    keeps its modseq (RFC 7162 §3.1.3)."""
    flags = mailboxes.canonical_flags(flags)
    ids = list(message_ids)
    result, modseqs, writes, modified = {}, {}, {}, []
    for start in range(0, len(ids), imap_store.CHUNK):
        rows = conn.execute(select(messages.c.id, messages.c.flags, messages.c.modseq)
                            .where(messages.c.id.in_(ids[start:start + imap_store.CHUNK]),
                                   messages.c.folder_id == folder_id)
                            .with_for_update()).all()
        for row in rows:
            old = mailboxes.parse_flags(row.flags)
            result[row.id], modseqs[row.id] = old, int(row.modseq)
            if unchanged_since is not None and row.modseq > unchanged_since:
                modified.append(row.id)
                continue
            new = flags if mode == "=" else old | flags if mode == "+" else old - flags
            result[row.id] = frozenset(new)
            if new != old:
                writes[row.id] = new
    if writes:
        imap_store.store_flags(conn, folder_id, writes)
        now = changes.modseqs(conn, [folder_id])[folder_id]
        modseqs.update((message_id, now) for message_id in writes)
    return Stored(result, modseqs, modified)


def changed_since(conn: Connection, folder_id: int, modseq: int) -> list:
    """The folder's messages (MessageInfo, UID order) changed after ``modseq``."""
    return mailboxes.list_messages(conn, folder_id, since_modseq=modseq)


def vanished_since(conn: Connection, folder_id: int, modseq: int, last_uid: int
                   ) -> list[tuple[int, int]]:
    """UID ranges expunged after ``modseq``; when that history is pruned, every UID up to
    ``last_uid`` that the folder no longer holds (vanished.py)."""
    uids = vanished.since(conn, folder_id, modseq)
    if uids is None:
        return vanished.absent(conn, folder_id, last_uid)
    return ranges_of(uids)


def resync(conn: Connection, folder_id: int, modseq: int, last_uid: int):
    """A QRESYNC SELECT's changes in one transaction: (changed messages, vanished ranges)."""
    return (changed_since(conn, folder_id, modseq),
            vanished_since(conn, folder_id, modseq, last_uid))


def ranges_of(uids) -> list[tuple[int, int]]:
    """Ascending UIDs as (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for uid in uids:
        if runs and uid == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], uid)
        else:
            runs.append((uid, uid))
    return runs
