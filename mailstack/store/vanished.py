"""The UIDs expunged from a folder, remembered for QRESYNC (RFC 7162 §3.2.5.2, §3.2.10).

Why: a client that comes back with ``SELECT … (QRESYNC (uidvalidity modseq …))`` must
learn which of its messages are gone.  Answering that from the folder (every UID it no
longer holds) costs the folder's size; answering from the expunges made since the
client's modseq costs the number of changes.  So every expunge writes its UIDs here with
the folder's new modseq, in the transaction that deletes them, and a resync reads the
rows past the client's modseq over the (folder_id, modseq) index.

Policy: the rows of a folder are kept for its last ``KEPT_CHANGES`` changes (modseq
steps: each delivery, flag change or expunge is one).  Older ones are pruned at the next
expunge, and ``folders.vanished_floor`` rises to the pruned modseq.  A client whose
modseq is below the floor (offline for longer than that, or from before this table
existed) gets the answer RFC 7162 §3.2.5.2 allows without the history: every UID of
its known range (or 1 to UIDNEXT-1) that the folder no longer holds -- correct, at the
cost of the folder's size, once.
"""

from __future__ import annotations

from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.engine import Connection

from mailstack.store import changes
from mailstack.store.schema import folders, messages, vanished

KEPT_CHANGES = 100_000
CHUNK = 500


def expunged(conn: Connection, folder_id: int, uids) -> int:
    """UIDs just deleted from the folder: bump its modseq, remember them; the modseq."""
    uids = sorted(set(uids))
    if not uids:
        return 0
    modseq = changes.touch(conn, [folder_id]).get(folder_id, 0)
    for start in range(0, len(uids), CHUNK):
        conn.execute(insert(vanished), [{"folder_id": folder_id, "uid": uid, "modseq": modseq}
                                        for uid in uids[start:start + CHUNK]])
    prune(conn, folder_id, modseq - KEPT_CHANGES)
    return modseq


def prune(conn: Connection, folder_id: int, up_to: int) -> int:
    """Forget the folder's expunges at or below modseq ``up_to``; how many rows went."""
    if up_to <= 0:
        return 0
    gone = conn.execute(delete(vanished).where(vanished.c.folder_id == folder_id,
                                               vanished.c.modseq <= up_to)).rowcount
    if gone:
        conn.execute(update(folders).where(folders.c.id == folder_id).values(
            vanished_floor=case((folders.c.vanished_floor < up_to, up_to),
                                else_=folders.c.vanished_floor)))
    return gone


def since(conn: Connection, folder_id: int, modseq: int) -> list[int] | None:
    """UIDs expunged after ``modseq``, ascending; None when that history was pruned."""
    floor = conn.execute(select(folders.c.vanished_floor)
                         .where(folders.c.id == folder_id)).scalar()
    if floor is None or modseq < floor:
        return None
    return sorted(conn.execute(select(vanished.c.uid).where(
        vanished.c.folder_id == folder_id, vanished.c.modseq > modseq)).scalars())


def absent(conn: Connection, folder_id: int, last_uid: int) -> list[tuple[int, int]]:
    """The UID ranges in 1..last_uid the folder no longer holds (the fallback answer:
    reads every UID of the folder)."""
    present = conn.execute(select(messages.c.uid).where(
        messages.c.folder_id == folder_id, messages.c.uid <= last_uid)
        .order_by(messages.c.uid)).scalars()
    gaps, expected = [], 1
    for uid in present:
        if uid > expected:
            gaps.append((expected, uid - 1))
        expected = uid + 1
    if expected <= last_uid:
        gaps.append((expected, last_uid))
    return gaps
