"""The messages a POP3 client is about to RETR, read and dot-stuffed before it asks.

Why: clients RETR 1..n in a row, each RETR sent once the previous reply is read.  Issue 6
read the next ~1 MB of messages per query instead of one query per message; a session
still waited on the store once per batch, and every RETR paid a coroutine and a Deferred
on the reactor.  Issue 16: the next batch is read while the current one is sent, and each
message is dot-stuffed and terminated in the store's thread as it is read, so a RETR
found here is answered at once, in one write, within the call that read the command.

Memory: what a session holds is at most the rest of one batch and the next batch (each
at most READ_AHEAD_BYTES or BATCH messages); a message over STREAM_OVER is never read
ahead (``pop3_transaction`` streams it by ranges).

Standards: RFC 1939 §5 (RETR), §3 (dot-stuffing, done by ``dotstuff.stuff``).
Security: the octets held per session are bounded (above), whatever the client asks.
"""

from __future__ import annotations

from mailstack.dotstuff import stuff
from mailstack.store import maildrop
from mailstack.store.body_ranges import STREAM_OVER

READ_AHEAD_BYTES = 1024 * 1024
BATCH = 64                       # messages per query at most


class ReadAhead:
    """One session's read-ahead: message id -> the octets RETR sends after its +OK line."""

    def __init__(self, db, account_id: int):
        self.db, self.account_id = db, account_id
        self._ready: dict[int, bytes] = {}
        self._reading: _Batch | None = None    # the next batch, being read
        self._batch = 0                          # messages in the last batch asked for

    def take(self, message_id: int) -> bytes | None:
        """The stuffed message if it is here already (no waiting), else None."""
        return self._ready.pop(message_id, None)

    def forget(self, message_id: int) -> None:
        """DELE: the message will not be asked for again."""
        self._ready.pop(message_id, None)

    async def fetch(self, drop, deleted, entry) -> bytes | None:
        """The stuffed message, read with the ones after it; None when it is gone."""
        batch = self._reading
        if batch is not None and entry.id in batch.ids:
            await batch.done
            if entry.id in self._ready:
                return self._ready.pop(entry.id)
        # Not being read (or that read failed: then this one fails the same way, and
        # the RETR answers its error).  What was read for another place is dropped.
        self._reading = None
        self._ready = await self._read(_next_ids(drop, deleted, drop.index(entry)))
        return self._ready.pop(entry.id, None)

    def refill(self, drop, deleted, after: int) -> None:
        """Once half of the batch is sent, start reading the next one from the drop's
        ``after``-th message (0-based) on, unless a read is under way."""
        if self._reading is not None or len(self._ready) > self._batch // 2:
            return
        ids = _next_ids(drop, deleted, after, skip=self._ready)
        if not ids:
            return
        batch = self._reading = _Batch(ids)
        # A failed read ahead is no error of its own: the RETR that needs the message
        # reads it again (``fetch``) and answers the error it then gets.
        batch.done = self._read(ids).addCallbacks(
            lambda octets: self._arrived(batch, octets), lambda _f: self._arrived(batch, {}))

    def _arrived(self, batch, octets) -> None:
        if self._reading is batch:              # not superseded meanwhile
            self._ready.update(octets)
            self._reading = None

    def _read(self, ids):
        self._batch = len(ids)
        return self.db.read(maildrop.bodies, self.account_id, ids, encode=stuff)


class _Batch:
    def __init__(self, ids):
        self.ids = frozenset(ids)
        self.done = None          # its Deferred: fires once the octets are in ``_ready``


def _next_ids(drop, deleted, start: int, skip=()) -> list[int]:
    """Ids of the live, not too large messages from the drop's ``start``-th (0-based) on,
    up to READ_AHEAD_BYTES or BATCH of them, leaving out those in ``skip`` (held already)."""
    ids, total = [], 0
    for n, e in enumerate(drop[start:], start + 1):
        if n in deleted or e.size > STREAM_OVER or e.id in skip:
            continue                    # a large message is read by ranges, not ahead
        ids.append(e.id)
        total += e.size
        if total >= READ_AHEAD_BYTES or len(ids) >= BATCH:
            break
    return ids
