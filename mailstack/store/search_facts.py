"""What IMAP SEARCH reads instead of the message body: decoded headers, the Date, the text.

Why: SEARCH FROM/SUBJECT/HEADER, SENTSINCE and BODY/TEXT run in SQL (RFC 3501 §6.4.4), so
they need columns, not bodies.  ``search_headers`` is the header block unfolded, RFC
2047-decoded and lower-cased, one ``name: value`` per line; ``sent_at`` is the Date header in
UTC; ``body_text`` is what a reader sees of the text parts: transfer encodings (base64,
quoted-printable) and charsets decoded, HTML markup dropped, lower-cased, each run of blanks
one space -- most mail is encoded, and a user searching for "café" means the word, not
"caf=C3=A9".  All are computed once, when the message is stored.

Bounded work for large mail (issue 13, case 5): the text parts are found in the MIME
structure computed for IMAP (message/structure.py, byte offsets into the message), so
the message is never parsed into a second tree or decoded whole.  Of the text parts at
most TEXT_INPUT octets are read and TEXT_LIMIT characters kept, and words are folded a
window at a time: a 25 MB text part costs 12 MB here (24 MB as HTML), not 15 times its
size.  SEARCH
BODY/TEXT therefore sees the first megabytes of a message's text, as a full-text index
usually does: Dovecot's fts has the same kind of cap (``fts_message_max_size``, the body
size processed by fts).  The header block read for the search headers is bounded too
(HEADER_LIMIT).
"""

from __future__ import annotations

import binascii
import html
import quopri
import re
from datetime import datetime, timezone
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime

from mailstack.message.address_list import parse_addresses
from mailstack.message.head import HEADER_LIMIT, Head   # octets of header read at most
from mailstack.message.structure import Part, analyse

TEXT_LIMIT = 1 << 20     # characters of body text kept per message (a search reads them all)
TEXT_INPUT = 4 << 20     # octets of (encoded) text parts read per message at most
_WINDOW = 64 * 1024      # characters split into words at a time
_NOT_BASE64 = bytes(set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          b"0123456789+/="))
_MARKUP = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.I | re.S)


def fold(text: str) -> str:
    """How stored text and needles are compared: lower-cased, each run of blanks one space.

    split/join rather than a regular expression: seven times faster on a 64 KB body.
    """
    words = " ".join(text.split())
    lead = " " if text[:1].isspace() else ""
    trail = " " if words and text[-1:].isspace() else ""
    return (lead + words + trail).lower()


def header_block(body: bytes, limit: int = HEADER_LIMIT) -> bytes:
    """The header up to its blank line (at most ``limit`` octets: a slice, not a copy)."""
    end = body.find(b"\r\n\r\n", 0, limit)
    if end < 0:
        end = body.find(b"\n\n", 0, limit)
    return body[:limit] if end < 0 else body[:end + 2]


def _decoded(value: str) -> str:
    """RFC 2047 decoded, as the email package decodes it.  Without ``=?`` there is no
    encoded word, and the email package returns the text as it is: it is not asked."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError, HeaderParseError):
        return value        # a bad encoded word (HeaderParseError: its base64) as written


ADDRESS_FIELDS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"})


def search_facts(body: bytes, head: Head | None = None) -> tuple[str, datetime | None]:
    """(search_headers, sent_at) of an RFC 5322 message.

    ``head`` is ``read_head(body)`` when the caller has it (message/head.py): the fields
    are then taken from it, as the email package would have read them; without it (or
    when the header is not plain) the email package reads the header."""
    if head is None:
        return _parsed_facts(body)
    lines, date = [], None
    for name, raw in head.fields:
        # What compat32 gives for the field: the octets as ASCII, each other octet
        # U+FFFD (a str with surrogates becomes a Header of charset unknown-8bit).
        value = raw.decode("ascii") if raw.isascii() else raw.decode("ascii", "replace")
        if date is None and name.lower() == "date":
            date = value.lstrip(" \t")
        name = name.lower()
        value = " ".join(value.split())
        if name in ADDRESS_FIELDS:
            value = addresses_text(value, head.addresses)
        lines.append(f"{name}: {_decoded(value).lower()}")
    return "\n".join(lines) + "\n", sent_on(date)


def _parsed_facts(body: bytes) -> tuple[str, datetime | None]:
    parsed = BytesHeaderParser(policy=compat32).parsebytes(header_block(body))
    lines = []
    for name, value in parsed.items():
        name = name.strip().lower()
        value = " ".join(str(value).split())
        if name in ADDRESS_FIELDS:
            value = addresses_text(value)
        lines.append(f"{name}: {_decoded(value).lower()}")
    return "\n".join(lines) + "\n", sent_on(parsed.get("Date"))


def addresses_text(value: str, parse=parse_addresses) -> str:
    """An address field as a search sees it: ``Name <mailbox@host>`` for each address,
    group names kept, comments dropped but one standing in for a missing name (imaptest's
    search-addresses; RFC 3501 §6.4.4 searches the field, not its comments).

    ``parse`` is ``parse_addresses``, or ``Head.addresses`` that remembers its answers."""
    out = []
    for name, _route, mailbox, host in parse(value.encode("utf-8", "surrogateescape")):
        if mailbox is not None and host is None and name is None:
            out.append(mailbox.decode("utf-8", "replace") + ":")        # a group starts
            continue
        if mailbox is None:
            continue                                                    # a group ends
        address = mailbox + (b"@" + host if host else b"")
        text = address.decode("utf-8", "replace")
        out.append(f"{name.decode('utf-8', 'replace').strip(chr(34))} <{text}>" if name else text)
    return ", ".join(out) if out else value


def sent_on(date) -> datetime | None:
    """The Date header's wall-clock time *in its own zone*, stored as if UTC.

    SENTON/SENTBEFORE/SENTSINCE compare the date as written, "disregarding time and
    timezone" (RFC 3501 §6.4.4): ``Date: Mon, 1 Dec 2025 23:30 -0800`` is sent on 1 Dec,
    although it is 2 Dec in UTC.
    """
    if not date:
        return None
    try:
        moment = parsedate_to_datetime(str(date))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment.replace(tzinfo=timezone.utc)


def text_parts(structure: Part):
    """The leaf text/* parts in order, those of attached messages included."""
    stack = [structure]
    while stack:
        part = stack.pop()
        if part.children:
            stack.extend(reversed(part.children))
        elif part.message is not None:
            stack.append(part.message)
        elif part.type == "text" and not part.is_multipart:
            yield part


def body_text(body: bytes, structure: Part | None = None) -> str:
    """The decoded text of the text/* parts, folded, at most TEXT_LIMIT characters.

    ``structure`` is ``analyse(body)`` when the caller has it already."""
    pieces, size, room = [], 0, TEXT_INPUT
    for part in text_parts(structure if structure is not None else analyse(body)):
        if room <= 0 or size >= TEXT_LIMIT:
            break
        end = min(part.end, part.body_start + room)
        raw = body[part.body_start:end]
        if end < part.end:
            raw = raw[:raw.rfind(b"\n") + 1] or raw     # never half an encoded line
        room -= len(raw)
        text = _text_of(raw, part)
        del raw
        for window in _windows(text):
            folded = " ".join(window.lower().split())
            if folded:
                pieces.append(folded)
                size += len(folded) + 1
            if size >= TEXT_LIMIT:
                break
    return " ".join(pieces)[:TEXT_LIMIT]


def _text_of(raw: bytes, part: Part) -> str:
    """A text part's body decoded: transfer encoding, charset, HTML markup."""
    if part.encoding == "base64":
        raw = _unbase64(raw)
    elif part.encoding == "quoted-printable":
        raw = quopri.decodestring(raw)
    charset = (part.content_param("charset") or "").strip().lower()
    if charset in ("", "us-ascii", "ascii"):         # the default; 8-bit text is UTF-8
        charset = "utf-8"
    try:
        text = raw.decode(charset, errors="replace")
    except LookupError:                               # an unknown charset name
        text = raw.decode("utf-8", errors="replace")
    if part.subtype == "html":
        text = html.unescape(_MARKUP.sub(" ", text))
    return text


def _unbase64(raw: bytes) -> bytes:
    """Base64 as the email package decodes it: lenient about line breaks, stray
    characters and missing padding."""
    data = raw.translate(None, _NOT_BASE64)
    try:
        return binascii.a2b_base64(data + b"==="[:(4 - len(data) % 4) % 4])
    except binascii.Error:          # no padding makes it valid: kept as it is, as email does
        return raw


def _windows(text: str):
    """``text`` in pieces of about _WINDOW characters, cut at white space."""
    start, size = 0, len(text)
    while start < size:
        end = min(start + _WINDOW, size)
        if end < size and not text[end].isspace():
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            end = cut + 1 if cut > start else end
        yield text[start:end]
        start = end
