"""A bounded line reader for SMTP and POP3, replacing LineOnlyReceiver's ``dataReceived``.

Why replace it: stock ``LineOnlyReceiver`` lets a stream without CRLF grow its buffer
without bound (quadratic copying), and on an over-long line calls ``lineLengthExceeded``
which, in Twisted's SMTP, switches out of DATA mid-message and drops the rest of the read
(TWISTED-NOTES).  Here an over-long line is reported once through ``line_too_long`` and
the rest of it, up to its CRLF, is skipped, while the lines after it in the same read are
still parsed.  The loop also stops at once when ``starttls.begin_tls`` ran mid-read.

Subclasses choose the limit per state via ``max_line_length()``.  In a message (SMTP
DATA) ``bare_lf_ends_lines`` makes a bare LF end a line too, as a ``BareLine``: a message
written with LF line ends is then cut into lines, not read as one over-long line, and
``smtp_data`` normalises or refuses it; a ``.`` ended by a bare LF is still content.

In a message, a read whose lines all end in CRLF is first offered whole to
``message_lines`` (issue 16): SMTP takes the lines before the end of data at once while
its queue is idle (``smtp_data``), and what it hands back goes line by line as above.

Security: a line costs at most ``max_line_length()`` octets of memory, however long it is;
an over-long line is answered once and skipped to its CRLF, never split into commands;
no line read after STARTTLS/STLS in the same read is run (``starttls``); once
MAX_QUEUED lines wait the socket is not read (what waits is about one read's worth), and
no line runs while the client leaves our replies unread.  Not here: how many commands a
session may send or how long it may last (the sessions' timeouts and ``deadlines``).
"""

from __future__ import annotations

import collections

from twisted.internet import defer
from twisted.protocols import basic


class BareLine(bytes):
    """A line that ended in a bare LF instead of CRLF (RFC 5321 §2.3.8 forbids it).
    ``stuffed``: it began after a CRLF, so a client dot-stuffed it (RFC 5321 §4.5.2)."""

    stuffed = True


class LineAfterBareLF(BareLine):
    """A line that began after a bare LF: no client stuffs it, so it is kept as it is."""

    stuffed = False


class LineWithBareCR(bytes):
    """A CRLF-ended line with a bare CR inside (RFC 5321 §2.3.8 forbids it too)."""

    stuffed = True


class BoundedLineReceiver(basic.LineOnlyReceiver):
    delimiter = b"\r\n"
    MAX_LENGTH = 4096
    bare_lf_ends_lines = False      # set while a message is read (SMTP DATA)
    _after_bare_lf = False          # the unfinished line began after a bare LF

    _skipping_overlong = False
    tls_started_mid_read = False

    def max_line_length(self) -> int:
        return self.MAX_LENGTH

    def line_too_long(self, start: bytes) -> None:
        """Called once per over-long line with its first bytes; the rest is skipped."""
        self.close_connection()

    def close_connection(self) -> None:
        """Close once what was written is sent.  A registered producer (back-pressure,
        below) would hold a TLS connection open: it is let go first."""
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self.tls_started_mid_read = False
        chunk = self._buffer + data
        lines = chunk.split(self.delimiter)
        self._buffer = lines.pop()
        if self.bare_lf_ends_lines:
            if self._after_bare_lf or _has_bare_line_end(chunk, len(lines)):
                lines = self._with_bare_lines(lines)
            elif lines and not self._skipping_overlong:
                lines = self.message_lines(lines)
        for line in lines:
            if self.transport.disconnecting or self.tls_started_mid_read:
                return
            if self._skipping_overlong:
                self._skipping_overlong = False  # this was the tail of a reported line
                continue
            if len(line) > self.max_line_length():
                self.line_too_long(line[:128])
                continue
            self.lineReceived(line)
        if len(self._buffer) > self.max_line_length() and not self.transport.disconnecting:
            if not self._skipping_overlong:
                self.line_too_long(self._buffer[:128])
                self._skipping_overlong = True
            self._buffer = b""

    def message_lines(self, lines: list) -> list:
        """Hook for a read of message lines, all CRLF-ended (no bare CR or LF, no over-long
        line being skipped): take what can be taken at once and return the lines left
        for ``lineReceived``, in order.  Here: none taken."""
        return lines

    def _with_bare_lines(self, lines: list) -> list:
        """``lines`` with each bare LF inside one (or in the unfinished tail) ending a line.
        A line that ends in a bare LF is a ``BareLine``; one that starts after a bare LF, a
        ``LineAfterBareLF``; a CRLF line holding a bare CR, a ``LineWithBareCR``.  Only a
        read that holds a bare CR or LF comes here (``_has_bare_line_end``)."""
        after = self._after_bare_lf
        split = []
        for line in lines:
            *bare, line = line.split(b"\n")
            for piece in bare:
                split.append(LineAfterBareLF(piece) if after else BareLine(piece))
                after = True
            if after:
                split.append(LineAfterBareLF(line))
            else:
                split.append(LineWithBareCR(line) if b"\r" in line else line)
            after = False
        if b"\n" in self._buffer:
            *bare, self._buffer = self._buffer.split(b"\n")
            for piece in bare:
                split.append(LineAfterBareLF(piece) if after else BareLine(piece))
                after = True
        self._after_bare_lf = after
        return split


def _has_bare_line_end(chunk: bytes, pairs: int) -> bool:
    """Whether ``chunk``, holding ``pairs`` CRLFs (its complete lines: the split counted
    them), holds a CR or LF outside a CRLF: two scans in C per read, so a message with
    CRLF line ends pays nothing per line (a CR that ends the read may be the first half of
    a CRLF split between reads)."""
    return (chunk.count(b"\n") != pairs
            or chunk.count(b"\r") - chunk.endswith(b"\r") != pairs)


OVERLONG = object()   # queue marker: a line was too long (answered in its turn)


class InOrderLineReceiver(BoundedLineReceiver):
    """One reply per command, strictly in order, even when a command waits on a Deferred,
    and never more replies than the client reads.

    Why: stock Twisted SMTP and POP3 answer pipelined commands while an earlier one is
    still waiting for the database or the realm (a pipelined RCPT gets 503, a STAT after
    PASS gets "not authenticated yet", a QUIT closes before the 250).  Here every line
    enters a queue; ``process_line`` may return a Deferred and the queue waits for it.
    Subclasses set ``self._pending``/``_busy``/``_draining`` via ``start_queue`` and
    implement ``process_line`` and ``command_failed``.

    Back-pressure (issue 13): the session is the transport's producer.  While the client
    leaves our replies unread (the transport's buffer is full), no queued command runs, and
    once ``MAX_QUEUED`` lines wait, the socket is not read: a client pipelining megabytes of
    NOOP without reading costs one read's worth of lines, not a reply per line in memory.
    """

    MAX_QUEUED = 64      # lines waiting before the socket is no longer read

    def start_queue(self, busy: bool = False) -> None:
        self._pending = collections.deque()
        self._busy = busy
        self._draining = False
        self._writes_paused = False
        self._reading_paused = False
        self._write_waiters = []
        self.transport.registerProducer(self, True)

    def clear_queue(self) -> None:
        self._pending.clear()
        self._input_pressure()

    # The transport calls these when its write buffer fills and drains.
    def pauseProducing(self) -> None:
        self._writes_paused = True

    def resumeProducing(self) -> None:
        self._writes_paused = False
        waiters, self._write_waiters = self._write_waiters, []
        for waiter in waiters:
            waiter.callback(None)
        if not self.transport.disconnecting:
            self._drain()

    def stopProducing(self) -> None:
        self._writes_paused = True
        waiters, self._write_waiters = self._write_waiters, []
        for waiter in waiters:
            waiter.callback(None)        # the writer sees ``disconnecting`` and stops

    def writable(self) -> defer.Deferred:
        """Fires once the client has read what we wrote: a long reply (RETR) is written a
        piece at a time, never whole into the transport's buffer."""
        if not self._writes_paused or self.transport.disconnecting:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._write_waiters.append(waiter)
        return waiter

    def _input_pressure(self) -> None:
        waiting = len(self._pending)
        if waiting > self.MAX_QUEUED and not self._reading_paused:
            self._reading_paused = True
            self.transport.pauseProducing()
        elif waiting <= self.MAX_QUEUED // 2 and self._reading_paused:
            self._reading_paused = False
            self.transport.resumeProducing()

    def queue_idle(self) -> bool:
        """Nothing waits, runs or is held back: a line handed over now would run at once,
        so a whole read of them may be taken in one go (``smtp_data.message_lines``)."""
        return not (self._pending or self._busy or self._writes_paused
                    or self._reading_paused or self.transport.disconnecting)

    def lineReceived(self, line: bytes) -> None:
        self.resetTimeout()
        self._pending.append(line)
        self._drain()

    def line_too_long(self, start: bytes) -> None:
        self._pending.append(OVERLONG)
        self._drain()

    def resume(self, _=None) -> None:
        """Let the queue run again (after a Deferred command, or a delayed banner)."""
        self._busy = False
        if not self.transport.disconnecting:
            self._drain()

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while (self._pending and not self._busy and not self._writes_paused
                   and not self.transport.disconnecting):
                result = self.process_line(self._pending.popleft())
                if isinstance(result, defer.Deferred):
                    self._busy = True
                    result.addErrback(self._failed)
                    result.addBoth(self.resume)
        finally:
            self._draining = False
        # Checked inline: this runs once per line of every DATA, so it must cost nothing
        # until the queue is long or reading is paused.
        if (self._reading_paused or len(self._pending) > self.MAX_QUEUED) \
                and not self.transport.disconnecting:
            self._input_pressure()

    def _failed(self, failure):
        if not self.transport.disconnecting:
            self.command_failed(failure)

    def process_line(self, line):
        raise NotImplementedError

    def command_failed(self, failure) -> None:
        raise NotImplementedError
