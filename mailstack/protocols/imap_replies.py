"""How an IMAP command handler refuses: raise ``no(...)`` or ``bad(...)``.

Why: a handler returns its completion text for ``OK`` and raises for anything else, so
the one place that writes the tagged reply (``imap.IMAPServer``) also announces pending
changes and logs the result, whatever the outcome.  RFC 3501 §7.1: NO is a refusal of a
well-formed command, BAD a protocol error.

Security: a refusal carries a constant of ours or a ``replies.CodedReply``, never an
exception's text (ARCHITECTURE C4), so no internal detail reaches a client.
"""

from __future__ import annotations

from mailstack import replies


class Refusal(Exception):
    def __init__(self, status: bytes, text: bytes):
        super().__init__(text)
        self.status, self.text = status, text


def no(text) -> Refusal:
    return Refusal(b"NO", text.imap() if isinstance(text, replies.CodedReply) else text)


def bad(text) -> Refusal:
    return Refusal(b"BAD", text.imap() if isinstance(text, replies.CodedReply) else text)


NONEXISTENT = b"[NONEXISTENT] No such mailbox"
TRYCREATE = b"[TRYCREATE] No such mailbox"
READ_ONLY = b"[READ-ONLY] Mailbox is read-only"
