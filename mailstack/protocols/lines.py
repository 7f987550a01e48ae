"""A bounded line reader for SMTP and POP3, replacing LineOnlyReceiver's ``dataReceived``.

Why replace it: stock ``LineOnlyReceiver`` lets a stream without CRLF grow its buffer
without bound (quadratic copying), and on an over-long line calls ``lineLengthExceeded``
which, in Twisted's SMTP, switches out of DATA mid-message and drops the rest of the read
(TWISTED-NOTES).  Here an over-long line is reported once through ``line_too_long`` and
the rest of it, up to its CRLF, is skipped, while the lines after it in the same read are
still parsed.  The loop also stops at once when ``starttls.begin_tls`` ran mid-read.

Subclasses choose the limit per state via ``max_line_length()``.
"""

from __future__ import annotations

from twisted.protocols import basic


class BoundedLineReceiver(basic.LineOnlyReceiver):
    delimiter = b"\r\n"
    MAX_LENGTH = 4096

    _skipping_overlong = False
    tls_started_mid_read = False

    def max_line_length(self) -> int:
        return self.MAX_LENGTH

    def line_too_long(self, start: bytes) -> None:
        """Called once per over-long line with its first bytes; the rest is skipped."""
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self.tls_started_mid_read = False
        lines = (self._buffer + data).split(self.delimiter)
        self._buffer = lines.pop()
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
