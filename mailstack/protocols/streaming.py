"""A long reply written as fast as the client reads it, and a large stored message read
for it a range at a time: what POP3 RETR and IMAP FETCH share.

Why a module of its own: both send messages of up to tens of megabytes, and neither may
hold one whole in memory nor copy one whole into the transport's buffer (issue 13).  So a
large message is read from the store a RANGE at a time (``store/body_ranges.py``) and
each range is written a CHUNK at a time, the next chunk only once the client has read
enough (``session.writable()``, the session's back-pressure).  What goes around the
octets stays with each protocol: POP3's status line and dot-stuffing (``encode``),
IMAP's literal and what to say when the message vanishes mid-way.

Security: a session holds at most one RANGE of a large message, and writes nothing more
while the client leaves what was written unread: a client that does not read cannot make
us buffer a message.
"""

from __future__ import annotations

from mailstack.store import body_ranges
from mailstack.store.body_ranges import RANGE

CHUNK = 64 * 1024             # octets per write


async def write_paced(session, octets: bytes, encode=None) -> bool:
    """Write ``octets`` a CHUNK at a time, each once the client has read enough; False
    when the client went away meanwhile.  ``encode`` turns each piece into what goes on
    the wire (POP3's dot-stuffing); without it the octets go as they are."""
    for start in range(0, len(octets), CHUNK):
        piece = octets[start:start + CHUNK]
        session.transport.write(piece if encode is None else encode(piece))
        await session.writable()
        if session.transport.disconnecting:
            return False
    return True


async def stored_ranges(db, message_id: int, start: int, end: int):
    """Octets ``start`` to ``end`` of a stored message, read a RANGE at a time as the
    caller asks for the next.  A range that comes back short means the message is gone
    (expunged by another session meanwhile): then ``None`` is yielded, and nothing after."""
    for at in range(start, end, RANGE):
        stop = min(end, at + RANGE)
        octets = await db.read(body_ranges.read_range, message_id, at, stop)
        if octets is None or len(octets) != stop - at:
            yield None
            return
        yield octets
