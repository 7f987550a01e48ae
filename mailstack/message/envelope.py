"""The IMAP ENVELOPE of a message, computed from its header when the message is stored.

Why stored: ENVELOPE is asked for by every client listing a mailbox; computing it once
means FETCH ENVELOPE reads a column instead of parsing mail.  Values are the raw header
bytes, unfolded but not RFC 2047 decoded (clients decode), taken from the first
occurrence of each field.  Sender and Reply-To copy From when absent or empty
(RFC 3501 §7.4.2).  An address field is read up to MAX_ADDRESS_FIELD octets (cut at a
comma): a few thousand addresses, more than any real message lists, while a hostile
multi-megabyte To: can neither take seconds to parse nor bloat what is stored and sent.

Standards: RFC 3501 §7.4.2 (ENVELOPE), RFC 5322 §3.6.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from mailstack.message.address_list import Address, parse_addresses
from mailstack.message.header_fields import ENVELOPE_FIELDS, first_fields

Addresses = tuple[Address, ...]
_TEXT_FIELDS = ("date", "subject", "in_reply_to", "message_id")
MAX_ADDRESS_FIELD = 256 * 1024


@dataclass(frozen=True)
class Envelope:
    date: bytes | None = None
    subject: bytes | None = None
    from_: Addresses | None = None
    sender: Addresses | None = None
    reply_to: Addresses | None = None
    to: Addresses | None = None
    cc: Addresses | None = None
    bcc: Addresses | None = None
    in_reply_to: bytes | None = None
    message_id: bytes | None = None

    def to_dict(self) -> dict:
        """JSON-ready: bytes become str via UTF-8 with surrogateescape (lossless)."""
        out = {}
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            if value is not None:
                out[name] = _text(value) if isinstance(value, bytes) else [
                    [_text(item) if item is not None else None for item in address]
                    for address in value]
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> Envelope:
        values = {}
        for name, value in data.items():
            if name in _TEXT_FIELDS:
                values[name] = _bytes(value)
            else:
                values[name] = tuple(tuple(_bytes(item) if item is not None else None
                                           for item in address) for address in value)
        return cls(**values)


_FIELD_NAMES = tuple(field.name for field in fields(Envelope))   # once, not per message


def _text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def _addresses(value: bytes | None, parse=parse_addresses) -> Addresses | None:
    if value is None:
        return None
    if len(value) > MAX_ADDRESS_FIELD:
        value = value[:value.rfind(b",", 0, MAX_ADDRESS_FIELD) + 1 or MAX_ADDRESS_FIELD]
    return parse(value) or None


def envelope_of(found: Mapping[str, bytes], parse=parse_addresses) -> Envelope:
    """The envelope from a message's fields (lower-case name -> unfolded value).

    ``parse`` is ``parse_addresses`` or one that remembers its answers for the message
    (``message/head.py``: the search headers parse the same From and To)."""
    authors = _addresses(found.get("from"), parse)
    return Envelope(
        date=found.get("date"), subject=found.get("subject"), from_=authors,
        sender=_addresses(found.get("sender"), parse) or authors,
        reply_to=_addresses(found.get("reply-to"), parse) or authors,
        to=_addresses(found.get("to"), parse), cc=_addresses(found.get("cc"), parse),
        bcc=_addresses(found.get("bcc"), parse), in_reply_to=found.get("in-reply-to"),
        message_id=found.get("message-id"))


def parse_envelope(header: bytes) -> Envelope:
    """The envelope of a message from its raw header block."""
    return envelope_of(first_fields(header, ENVELOPE_FIELDS))
