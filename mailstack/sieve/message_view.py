"""What a Sieve script may look at in one message: header fields, addresses, the
envelope, the size and (bounded) the body.

Why a view of its own: delivery holds the message in a spool, its header already read,
and must not hand the interpreter more than it needs; the interpreter must not parse the
same field twice however many rules test it.  A ``MessageView`` is built from the header
block and reads everything lazily, once: the fields are split on first use, each field
name's values decoded on first use and kept, each address field parsed once.  A message
delivered to several accounts is viewed once: ``for_recipient`` gives the view of the
next recipient, sharing what was already decoded.

Header values are what §5.7 compares: unfolded, RFC 2047 encoded words decoded, raw
UTF-8 (RFC 6532) read as such, leading and trailing whitespace removed.  Addresses are
the addr-specs of an address-list: never a display name, a comment or a group's name
(§5.1); an address without a domain is not valid, so it matches only ``:all`` (§2.7.4).

The body is read only when a ``body`` test runs, at most ``BODY_LIMIT`` octets of it
(RFC 5173 lets the implementation decide how much it reads; a test on a 50 MB attachment
must not cost 50 MB of decoding per recipient).

Standards: RFC 5228 §2.7.2, §2.7.4, §5.1, §5.4, §5.7, §5.9; RFC 5322 §2.2.3, §3.4;
RFC 2047; RFC 6532 §3.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.errors import HeaderParseError
from email.header import decode_header, make_header

from mailstack.message.address_list import parse_addresses

BODY_LIMIT = 1 << 20          # octets of the body a ``body`` test reads at most
# Fields whose body is an address-list or a mailbox (RFC 5228 §5.1 names the first seven).
ADDRESS_FIELDS = frozenset({
    "from", "to", "cc", "bcc", "sender", "resent-from", "resent-to", "resent-cc",
    "resent-bcc", "resent-sender", "reply-to", "resent-reply-to", "return-path",
    "delivered-to", "disposition-notification-to", "errors-to", "x-original-to",
    "envelope-to", "x-envelope-to",
})
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)", re.M)
_QUOTED_PAIR = re.compile(r"\\(.)")
# One plain address, bare or in angle brackets after a plain display name: no quotes,
# comments, groups, lists or routes, so the full parser would find just these two parts.
_WORD = rb'[^\s<>"(),;:\\@\[\]]+'
_PLAIN_ADDRESS = re.compile(rb'[ \t]*(?:(' + _WORD + rb')@(' + _WORD + rb')|[^<>"(),;:\\@\[\]]*<('
                            + _WORD + rb')@(' + _WORD + rb')>)[ \t]*')

Body = Callable[[int], "bytes | None"]     # (limit) -> at most limit octets, or None


def _text(raw: bytes) -> str:
    """A field's value as text: unfolded, decoded (RFC 2047, RFC 6532), trimmed."""
    raw = raw.replace(b"\r", b"").replace(b"\n", b"")
    text = raw.decode("ascii") if raw.isascii() else raw.decode("utf-8", "replace")
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except (ValueError, LookupError, UnicodeError, HeaderParseError):
            pass                       # a broken encoded word is compared as written
    return text.strip(" \t")


def _address(mailbox: bytes | None, host: bytes | None) -> tuple[str, str | None]:
    local = (mailbox or b"").decode("utf-8", "replace")
    if len(local) > 1 and local.startswith('"') and local.endswith('"'):
        local = _QUOTED_PAIR.sub(r"\1", local[1:-1])
    return local, host.decode("utf-8", "replace") if host else None


def _addresses(raw: bytes) -> list[tuple[str, str | None]]:
    """The addresses of one field's value: the common plain form at once, else parsed."""
    raw = raw.replace(b"\r", b"").replace(b"\n", b"")
    plain = _PLAIN_ADDRESS.fullmatch(raw)
    if plain is not None:
        local, domain = plain.group(1, 2) if plain.group(1) else plain.group(3, 4)
        return [_address(local, domain)]
    return [_address(mailbox, host)
            for _, _, mailbox, host in parse_addresses(raw, groups=False)]


def address_part(local: str, domain: str | None, part: str) -> str | None:
    """``:all``, ``:localpart`` or ``:domain`` of an address (RFC 5228 §2.7.4); None when
    the address has no such part (no domain: not valid, only ``:all`` can match)."""
    if part == ":all":
        return f"{local}@{domain}" if domain is not None else local
    if domain is None:
        return None
    return local if part == ":localpart" else domain


class _Header:
    """The parsed header, shared by the views of one message's recipients."""

    __slots__ = ("block", "fields", "texts", "addresses", "body", "octets", "body_read",
                 "memo")

    def __init__(self, block: bytes, body: Body):
        self.block = block
        self.fields: dict[str, list[bytes]] | None = None
        self.texts: dict[str, tuple[str, ...]] = {}
        self.addresses: dict[str, tuple[tuple[str, str | None], ...]] = {}
        self.body, self.octets, self.body_read = body, None, False
        self.memo: dict = {}               # the body transforms' results (body.py)

    def raw(self, name: str) -> list[bytes]:
        if self.fields is None:
            fields: dict[str, list[bytes]] = {}
            for found in _FIELD.finditer(self.block):
                fields.setdefault(found.group(1).decode("ascii").lower(), []).append(
                    found.group(2))
            self.fields = fields
        return self.fields.get(name, [])


class MessageView:
    """One message as seen by the script of one recipient (module docstring).

    ``header``: the header block (up to, not including, the blank line); ``size``: the
    message's size in octets (RFC 5228 §5.9); ``envelope_from``: the MAIL FROM address,
    "" for the null sender; ``envelope_to``: the RCPT TO address that brought the
    message to this account (§5.4); ``body(limit)``: at most ``limit`` octets of the
    body (after the blank line), or None when the message has no blank line; called at
    most once per message, and only by a ``body`` test."""

    __slots__ = ("size", "envelope_from", "envelope_to", "_header")

    def __init__(self, header: bytes, *, size: int, envelope_from: str = "",
                 envelope_to: str = "", body: Body = lambda limit: None):
        self.size, self.envelope_from, self.envelope_to = size, envelope_from, envelope_to
        self._header = _Header(header, body)

    @classmethod
    def from_bytes(cls, message: bytes, *, envelope_from: str = "",
                   envelope_to: str = "") -> "MessageView":
        """The view of a whole message in memory (tests, small callers)."""
        found = re.search(rb"\r?\n\r?\n", message)
        if found is None:
            return cls(message, size=len(message), envelope_from=envelope_from,
                       envelope_to=envelope_to)
        body = message[found.end():]
        return cls(message[:found.start()], size=len(message), envelope_from=envelope_from,
                   envelope_to=envelope_to, body=lambda limit: body[:limit])

    def for_recipient(self, envelope_to: str) -> "MessageView":
        """The same message seen by another recipient: decoded fields are shared."""
        view = MessageView.__new__(MessageView)
        view.size, view.envelope_from, view.envelope_to = (
            self.size, self.envelope_from, envelope_to)
        view._header = self._header
        return view

    def header_block(self) -> bytes:
        return self._header.block

    def exists(self, name: str) -> bool:
        return bool(self._header.raw(name.lower()))

    def header(self, name: str) -> tuple[str, ...]:
        """Every occurrence of field ``name``, decoded (module docstring)."""
        name = name.lower()
        texts = self._header.texts.get(name)
        if texts is None:
            texts = self._header.texts[name] = tuple(_text(raw) for raw in
                                                     self._header.raw(name))
        return texts

    def addresses(self, name: str) -> tuple[tuple[str, str | None], ...]:
        """(local part, domain or None) of every address in every field ``name``."""
        name = name.lower()
        found = self._header.addresses.get(name)
        if found is None:
            found = self._header.addresses[name] = tuple(
                address for raw in self._header.raw(name) for address in _addresses(raw))
        return found

    def body(self) -> bytes | None:
        """The body's first ``BODY_LIMIT`` octets; None when the message has none."""
        header = self._header
        if not header.body_read:
            octets = header.body(BODY_LIMIT)
            header.octets = octets[:BODY_LIMIT] if octets is not None else None
            header.body_read = True
        return header.octets

    @property
    def memo(self) -> dict:
        """A place for what is computed once per message (the body transforms)."""
        return self._header.memo
