"""Stored messages as Twisted's IMAP message interfaces, served from memory.

Why from memory: Twisted's FETCH code reads message attributes synchronously (getFlags,
getHeaders, getBodyFile...), so one batched query loads what a FETCH needs and these
objects answer from it.  ``IMessageFile.open`` returns the stored CRLF bytes, so
``RFC822.SIZE`` always equals the size of the ``BODY[]`` literal.
"""

from __future__ import annotations

import email
import email.policy
import io
from email.utils import format_datetime

from twisted.mail import imap4
from zope.interface import implementer


def _raw_split(raw: bytes) -> tuple[bytes, bytes]:
    """(header block including the blank line, body) of RFC 5322 bytes."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return raw, b""
    return raw[:end + 4], raw[end + 4:]


def header_fields(header_block: bytes, names, negate: bool) -> bytes:
    """HEADER.FIELDS (names) / HEADER.FIELDS.NOT: the raw lines kept, plus the blank line."""
    wanted = {n.lower() for n in names}
    kept, keep = [], False
    for line in header_block.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if keep:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        keep = (name in wanted) != negate
        if keep:
            kept.append(line)
    return b"".join(l + b"\r\n" for l in kept) + b"\r\n"


def _headers_of(msg, negate: bool, names) -> dict:
    wanted = {n.lower() if isinstance(n, str) else n.decode().lower() for n in names}
    out = {}
    for key, value in msg.items():
        lower = key.lower()
        if (lower in wanted) != negate or (not names and negate):
            out.setdefault(lower, str(value))
    return out


@implementer(imap4.IMessagePart)
class Part:
    """A MIME part of a stored message (for BODYSTRUCTURE and BODY[n])."""

    def __init__(self, msg):
        self.msg = msg

    def getHeaders(self, negate, *names):
        return _headers_of(self.msg, negate, names)

    def raw(self) -> bytes:
        return self.msg.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))

    def body_bytes(self) -> bytes:
        return _raw_split(self.raw())[1]

    def getBodyFile(self):
        return io.BytesIO(self.body_bytes())

    def getSize(self):
        return len(self.body_bytes())

    def isMultipart(self):
        return self.msg.is_multipart()

    def getSubPart(self, part):
        if not self.msg.is_multipart():
            raise IndexError(part)
        return Part(self.msg.get_payload()[part])


@implementer(imap4.IMessage, imap4.IMessageFile)
class StoredMessage(Part):
    def __init__(self, info, raw: bytes | None):
        self.info = info
        self._raw = raw or b""
        self._parsed = None

    @property
    def msg(self):
        if self._parsed is None:
            self._parsed = email.message_from_bytes(self._raw, policy=email.policy.compat32)
        return self._parsed

    def raw(self) -> bytes:
        return self._raw

    def open(self):
        return io.BytesIO(self._raw)

    def getSize(self):
        return self.info.size

    def getUID(self):
        return self.info.uid

    def getFlags(self):
        return sorted(self.info.flags)

    def getInternalDate(self):
        return format_datetime(self.info.internal_date)
