"""Splitting the IMAP byte stream into whole commands, literals included, in bounded memory.

Why ours: Twisted's IMAP parser reads a literal size with ``int()`` (so ``{+60000000}``,
``{60_000_000}`` and ``{ 60000000}`` pass a digits-only cap, and ``{-1}`` swallows the next
line) and answers nothing to a line it cannot frame.  Here framing is separate from
grammar: a command is every line up to one that does not end in a literal marker, with
each literal's octets in between (RFC 3501 §4.3, §7.5; RFC 7888 LITERAL+).  The grammar
(``imap_parser``) then reads that one byte string.

The server drives the framing: it asks for the next ``Event`` only when it is ready for
one, so a client that pipelines faster than it reads replies leaves its bytes in the
socket, not in our memory (the transport is paused once ``buffered`` passes a bound).  A
synchronising literal (``{N}``) is announced with a ``LiteralRequest``; the server checks
the size against the command, then either ``accept_literal`` (and sends ``+``) or
``reject_literal`` (and answers the tag: the client must then not send the octets).  A
non-synchronising literal (``{N+}``) arrives without asking: one too big is counted off
and discarded, never stored.

An APPEND's message may be larger than a command is allowed to be: the server then
accepts its literal into a sink (a ``message/spool.Spool``), which takes the octets as
they arrive, so a 25 MB APPEND costs a spool file, not 25 MB of memory several times
over (issue 13).  The ``Command`` carries such literals in ``spooled``, keyed by the
position in ``raw`` where their octets would have been; the grammar reads them there.
A sink that fails (the disk is full) turns the rest of the literal into a discarded one.

Security: every size is bounded before a byte is kept: a command line (with its
literals held in memory) by ``max_command``, a literal's digits by ``_MARKER``, a literal
by the server's limit for the command it belongs to.  A sink is closed by whoever holds
it last: the framing until its command is framed, the server after that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailstack.protocols.imap_tokens import TAG

_MARKER = re.compile(rb"\{([0-9]{1,10})(\+?)\}\Z")


@dataclass(frozen=True)
class Command:
    raw: bytes            # the whole command without its final CRLF, literals inline
    # literals accepted into a sink: {position in raw of their (absent) octets: sink}
    spooled: dict = field(default_factory=dict, compare=False)

    def close(self) -> None:
        """Let go of the sinks (once the command is answered)."""
        for sink in self.spooled.values():
            sink.close()


@dataclass(frozen=True)
class Line:
    raw: bytes            # a line read in line mode (IDLE's DONE, a SASL response)


@dataclass(frozen=True)
class LiteralRequest:
    head: bytes           # the command so far, up to and including the marker
    size: int
    synchronising: bool


@dataclass(frozen=True)
class TooLong:
    head: bytes           # the first bytes of a command that passed max_command


@dataclass(frozen=True)
class Discarded:
    head: bytes           # a command whose non-synchronising literal was refused
    failed: bool = False  # True: refused because its sink failed, not for its size


class Framing:
    """Incremental: ``feed`` bytes, then ``next_event`` until it returns None."""

    def __init__(self, max_command: int):
        self.max_command = max_command
        self.buffer = bytearray()
        self.line_mode = False
        self._pieces: list[bytes] = []    # the command so far
        self._size = 0
        self._literal = 0                 # octets of an accepted literal still to read
        self._discard = 0                 # octets of a refused literal still to skip
        self._waiting: LiteralRequest | None = None
        self._skip_line = False           # skipping the rest of an over-long line
        self._sink = None                 # where the accepted literal's octets go, if not _pieces
        self._spooled: dict = {}          # the command's literals taken by a sink
        self._sink_failed = False         # the command is discarded because a sink failed

    @property
    def buffered(self) -> int:
        return len(self.buffer)

    @property
    def command_size(self) -> int:
        """Octets of the command framed so far that count toward ``max_command``."""
        return max(self._size, 0)

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def reset(self) -> None:
        """Forget everything received (after STARTTLS, RFC 3501 §6.2.1, or when the
        connection is lost): a sink of a command not yet framed is closed."""
        self.buffer.clear()
        self._abandon()
        self._discard = 0
        self._skip_line = False

    # --- the server's answers to a LiteralRequest ---------------------------------------
    def accept_literal(self, sink=None) -> None:
        """Read the literal into the command, where it counts toward max_command; or, with
        ``sink`` (an APPEND's message, bounded by APPENDLIMIT instead), into the sink."""
        request, self._waiting = self._waiting, None
        self._literal = request.size
        self._sink = sink
        if sink is None:
            self._size += request.size
        else:
            self._spooled[sum(map(len, self._pieces))] = sink

    def reject_literal(self) -> None:
        """The command is answered; the client sends no octets (synchronising literal)."""
        self._waiting = None
        self._abandon()

    def discard_literal(self) -> None:
        """A non-synchronising literal refused: its octets and the rest of the command are
        skipped; the server answers the tag once that is done (a ``Discarded`` event)."""
        request, self._waiting = self._waiting, None
        self._throw_away(request.head, request.size)

    def _throw_away(self, head: bytes, octets: int) -> None:
        """Skip ``octets`` of literal and the rest of the command, then a ``Discarded``."""
        self._close_sinks()
        self._discard = octets
        self._pieces = [head]
        self._size = -1                   # marks the command as being thrown away

    # --- events ----------------------------------------------------------------------------
    def next_event(self):
        if self._waiting is not None:
            return None
        while True:
            if self._discard and not self._skip_literal():
                return None
            if self._literal and not self._take_literal():
                return None
            if self._discard or self._literal:
                continue
            end = self.buffer.find(b"\n")
            if self._skip_line:
                if end < 0:
                    self.buffer.clear()
                    return None
                del self.buffer[:end + 1]
                self._skip_line = False
                continue
            if end < 0:
                return self._check_partial_line()
            line = bytes(self.buffer[:end])
            del self.buffer[:end + 1]
            event = self._line_event(line[:-1] if line.endswith(b"\r") else line)
            if event is not None:
                return event

    def _skip_literal(self) -> bool:
        taken = min(self._discard, len(self.buffer))
        del self.buffer[:taken]
        self._discard -= taken
        return self._discard == 0

    def _take_literal(self) -> bool:
        if not self.buffer:
            return False
        taken = bytes(self.buffer[:self._literal])
        del self.buffer[:len(taken)]
        self._literal -= len(taken)
        if self._sink is None:
            self._pieces.append(taken)
            return self._literal == 0
        try:
            self._sink.write(taken)
        except OSError:                   # the spool's disk: the command cannot be kept
            self._sink_failed = True
            self._throw_away(self._pieces[0], self._literal)
            self._literal = 0
            return True
        if self._literal == 0:
            self._sink = None
        return self._literal == 0

    def _check_partial_line(self):
        """A line with no end yet: past the bound it is answered now and its rest skipped."""
        if len(self.buffer) + max(self._size, 0) <= self.max_command:
            return None
        head = self._head(bytes(self.buffer[:128]))
        self.buffer.clear()
        self._skip_line = True
        self._abandon()
        return TooLong(head)

    def _head(self, tail: bytes) -> bytes:
        return (b"".join(self._pieces[:1]) + tail)[:128]

    def _line_event(self, line: bytes):
        if self._size < 0:                    # the rest of a discarded command
            return self._after_discard(line)
        if self.line_mode and not self._pieces:
            return Line(line)
        if self._size + len(line) > self.max_command:
            head = self._head(line[:128])
            self._abandon()
            return TooLong(head)
        found = _MARKER.search(line)
        if found is None:
            command = Command(b"".join(self._pieces) + line, self._spooled)
            self._spooled = {}            # the server's now
            self._abandon()
            return command
        self._pieces.append(line + b"\r\n")
        self._size += len(line) + 2
        self._waiting = LiteralRequest(b"".join(self._pieces), int(found.group(1)),
                                       synchronising=not found.group(2))
        return self._waiting

    def _after_discard(self, line: bytes):
        found = _MARKER.search(line)
        if found is not None and found.group(2):    # another non-synchronising literal
            self._discard = int(found.group(1))
            return None
        # The end of the command, or a synchronising literal the client waits to be asked
        # for: either way the command is answered now and the client sends no more of it.
        head, failed = self._pieces[0], self._sink_failed
        self._abandon()
        return Discarded(head, failed)

    def _abandon(self) -> None:
        self._close_sinks()
        self._pieces = []
        self._size = 0
        self._literal = 0
        self._waiting = None
        self._sink_failed = False

    def _close_sinks(self) -> None:
        sinks, self._spooled, self._sink = self._spooled, {}, None
        for sink in sinks.values():
            sink.close()


def tag_of(head: bytes) -> bytes | None:
    """The tag of a command answered before it was parsed (too long, literal refused)."""
    found = TAG.match(head)
    return found.group() if found else None
