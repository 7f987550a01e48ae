"""One stateful dot-stuffer for everything we send with a ``.`` terminator (POP3 RETR/TOP,
the outbound SMTP client).

Why stateful: Twisted stuffs each 16 KiB chunk on its own, so a line starting with "." on
a chunk boundary goes out unstuffed -- a crafted message then ends RETR early and its tail
is read by the client as server replies (or, outbound, as SMTP commands: an injected RCPT).
Here the state (are we at the start of a line? is a CR waiting for its LF?) crosses chunk
boundaries.  Bare LF and bare CR become CRLF; stored CRLF stays CRLF (never CR CR LF).

Why bare CR too (issue 13): a stored message may carry one, and it must not be sent (RFC
5321 §2.3.8).  Receivers disagree on what it means -- one that takes a bare CR for a line
end reads ``\r.\r\n`` as the end of DATA and the rest as commands (SMTP smuggling); a POP3
client may end RETR there.  A line the normalising creates that starts with "." is stuffed
like any other.

Standards: RFC 5321 §2.3.8, §4.5.2, RFC 1939 §3.
"""

from __future__ import annotations


class DotStuffer:
    def __init__(self):
        self._at_line_start = True
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        text = self._carry + chunk
        self._carry = b""
        if text.endswith(b"\r"):
            self._carry, text = b"\r", text[:-1]   # its LF may be in the next chunk
        if not text:
            return b""
        if b"\r" in text:
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        text = text.replace(b"\n", b"\r\n")
        text = text.replace(b"\r\n.", b"\r\n..")
        if self._at_line_start and text.startswith(b"."):
            text = b"." + text
        self._at_line_start = text.endswith(b"\r\n")
        return text

    def finish(self) -> bytes:
        """What ends the stream: the rest, a CRLF if the last line lacked one, and ``.``."""
        tail = b""
        if self._carry:
            tail, self._carry = self.feed(b"\n"), b""
        if not self._at_line_start:
            tail += b"\r\n"
        self._at_line_start = True
        return tail + b".\r\n"


def stuff(message: bytes) -> bytes:
    """The whole message, stuffed and terminated: what ``DotStuffer`` makes of it.

    Why not the DotStuffer (issue 16): its round trip through bare LF (CRLF -> LF -> CRLF)
    was a quarter of the instructions of a POP3 RETR.  Here ``bytes.splitlines`` cuts at
    exactly the same line ends (CRLF, bare LF, bare CR: the only ones it knows for bytes)
    and one join puts CRLF after each line, the last one included.
    """
    lines = message.splitlines()
    lines.append(b"")                  # a CRLF after the last line, whether it had one
    text = b"\r\n".join(lines).replace(b"\r\n.", b"\r\n..")
    if text.startswith(b"."):
        text = b"." + text
    return text + b".\r\n"
