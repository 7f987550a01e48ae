"""A message on its way in: written to a temporary file as it arrives, read once to store it.

Why: kept as a list of lines, then joined, then copied behind the Received header, a 25 MB
message cost several times its size for every session receiving one (issue 13, case 5).
Here each line goes to a ``SpooledTemporaryFile`` as DATA arrives: the first IN_MEMORY
octets stay in memory (most mail is small), a larger message moves to an anonymous file
on disk (unlinked at creation: nothing is left behind if the process dies).  Lines are
gathered into FLUSH-sized writes, so a line costs a list append, not a write, and so does
a read of DATA taken at once (``add_lines``, issue 16).

The first RESERVED octets of the file are left free.  The store writes the Received
header (RFC 5321 §4.4) there, just before the message, and reads header and message back
as one ``bytes`` object: the stored message exists once in memory, never read and then
copied behind its header.

A stored message can also be written from the spool piece by piece (``SpooledMessage``),
so a database driver that copies what it is given need not meet the whole message in
memory as well.

Only one thread uses a spool at a time: the reactor while DATA arrives, then the store's
thread, then the reactor again to close it.
"""

from __future__ import annotations

import tempfile

IN_MEMORY = 256 * 1024      # octets kept in memory before the spool moves to disk
FLUSH = 64 * 1024           # lines are written in pieces of about this size
RESERVED = 4096             # room for the Received header in front of the message


class Spool:
    """The octets of one message, CRLF-terminated lines, already dot-unstuffed."""

    def __init__(self, directory: str | None = None):
        """``directory``: ``[smtp] spool_dir`` for the server; None, the system's temporary
        directory (the CLI and tests)."""
        self._file = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY, mode="w+b", dir=directory)
        self._file.seek(RESERVED)
        self._pieces: list[bytes] = []     # CRLF-ended lines not yet written, joined
        self._lines: list[bytes] = []      # lines not yet written after them, without CRLF
        self._pending = 0                  # octets of both, CRLFs included
        self._written = 0

    @property
    def size(self) -> int:
        """Octets of the message so far."""
        return self._written + self._pending

    __len__ = size.fget

    @property
    def closed(self) -> bool:
        return self._file.closed

    def add_line(self, line: bytes) -> None:
        """Append one line; its CRLF is added here."""
        self._lines.append(line)
        self._pending += len(line) + 2
        if self._pending >= FLUSH:
            self._flush()

    def add_lines(self, data: bytes) -> None:
        """Append lines already joined, each CRLF-ended (a read of DATA at once, issue 16);
        they are gathered into FLUSH-sized writes like single lines."""
        if self._lines:
            self._pieces.append(b"\r\n".join(self._lines) + b"\r\n")
            self._lines = []
        self._pieces.append(data)
        self._pending += len(data)
        if self._pending >= FLUSH:
            self._flush()

    def write(self, data: bytes) -> None:
        """Append octets as they are (an IMAP literal as it arrives, or a message that is
        already whole)."""
        self._flush()
        self._put(data)

    def _flush(self) -> None:
        if self._pieces:
            if self._lines:
                self._pieces.append(b"\r\n".join(self._lines) + b"\r\n")
            pieces, self._pieces, self._lines, self._pending = self._pieces, [], [], 0
            self._put(pieces[0] if len(pieces) == 1 else b"".join(pieces))
        elif self._lines:
            lines, self._lines, self._pending = self._lines, [], 0
            self._put(b"\r\n".join(lines) + b"\r\n")

    def _put(self, data: bytes) -> None:
        self._file.seek(RESERVED + self._written)
        self._file.write(data)
        self._written += len(data)

    def read(self, prefix: bytes = b"") -> bytes:
        """The whole message with ``prefix`` (the Received header) in front, in one read."""
        self._flush()
        if len(prefix) > RESERVED:                        # never for our own header
            self._file.seek(RESERVED)
            return prefix + self._file.read(self.size)
        start = RESERVED - len(prefix)
        self._file.seek(start)
        self._file.write(prefix)
        self._file.seek(start)
        return self._file.read(len(prefix) + self.size)

    def replace(self, message: bytes) -> None:
        """Make ``message`` the spool's whole content (a header field removed before the
        message is stored: policy/authentication.py)."""
        self._pieces, self._lines, self._pending, self._written = [], [], 0, 0
        self._file.seek(RESERVED)
        self._file.truncate()
        self._put(message)

    def remove_fields(self, seen: bytes, remove) -> int:
        """Take header fields out of the message: ``remove(message) -> (message, count)``
        is tried on ``seen`` -- the whole message, or only its ``head`` -- and the whole
        message is read (again) only when ``seen`` was its head and holds something to
        remove.  Returns the count removed.  Why one place: port 25 removes forged
        Authentication-Results and X-Spam-* fields, each before its own is added."""
        cleaned, count = remove(seen)
        if count == 0:
            return 0
        if len(seen) < self.size:            # only the head was looked at
            cleaned, count = remove(self.read())
        self.replace(cleaned)
        return count

    def with_prefix(self, prefix: bytes) -> SpooledMessage:
        """The message as it will be stored, ``prefix`` in front, read piece by piece."""
        return SpooledMessage(self, prefix)

    def pieces(self, size: int):
        """The message in pieces of at most ``size`` octets."""
        self._flush()
        for start in range(0, self.size, size):
            self._file.seek(RESERVED + start)
            yield self._file.read(min(size, self.size - start))

    def head(self, limit: int) -> bytes:
        """The first ``limit`` octets of the message (its header, for a quick look)."""
        self._flush()
        self._file.seek(RESERVED)
        return self._file.read(min(limit, self.size))

    def close(self) -> None:
        """Free the memory or the file at once; safe to call again."""
        self._pieces, self._lines, self._pending = [], [], 0
        self._file.close()


class SpooledMessage:
    """A stored message's octets still in their spool: its length, its pieces, or all."""

    def __init__(self, spool: Spool, prefix: bytes):
        self.spool, self.prefix = spool, prefix

    def __len__(self) -> int:
        return len(self.prefix) + self.spool.size

    def read(self) -> bytes:
        return self.spool.read(self.prefix)

    def chunks(self, size: int):
        """The octets in pieces of at most ``size``."""
        yield self.prefix
        yield from self.spool.pieces(size)


def spooled(message: bytes, directory: str | None = None) -> Spool:
    """A spool holding ``message`` (callers that already have the octets, and tests)."""
    spool = Spool(directory)
    spool.write(message)
    return spool
