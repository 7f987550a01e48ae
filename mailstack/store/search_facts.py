"""What IMAP SEARCH reads instead of the message body: decoded headers, the Date, the text.

Why: SEARCH FROM/SUBJECT/HEADER, SENTSINCE and BODY/TEXT run in SQL (RFC 3501 §6.4.4), so
they need columns, not bodies.  ``search_headers`` is the header block unfolded, RFC
2047-decoded and lower-cased, one ``name: value`` per line; ``sent_at`` is the Date header in
UTC; ``body_text`` is what a reader sees of the text parts: transfer encodings (base64,
quoted-printable) and charsets decoded, HTML markup dropped, lower-cased, each run of blanks
one space -- most mail is encoded, and a user searching for "café" means the word, not
"caf=C3=A9".  All are computed once, when the message is stored.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from email import message_from_bytes
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime

from mailstack.message.address_list import parse_addresses

TEXT_LIMIT = 1 << 20     # characters of body text kept per message (a search reads them all)
_MARKUP = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.I | re.S)


def fold(text: str) -> str:
    """How stored text and needles are compared: lower-cased, each run of blanks one space.

    split/join rather than a regular expression: seven times faster on a 64 KB body.
    """
    words = " ".join(text.split())
    lead = " " if text[:1].isspace() else ""
    trail = " " if words and text[-1:].isspace() else ""
    return (lead + words + trail).lower()


def header_block(body: bytes) -> bytes:
    end = body.find(b"\r\n\r\n")
    if end < 0:
        end = body.find(b"\n\n")
    return body if end < 0 else body[:end + 2]


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


ADDRESS_FIELDS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"})


def search_facts(body: bytes) -> tuple[str, datetime | None]:
    """(search_headers, sent_at) of an RFC 5322 message."""
    parsed = BytesHeaderParser(policy=compat32).parsebytes(header_block(body))
    lines = []
    for name, value in parsed.items():
        name = name.strip().lower()
        value = " ".join(str(value).split())
        if name in ADDRESS_FIELDS:
            value = addresses_text(value)
        lines.append(f"{name}: {_decoded(value).lower()}")
    return "\n".join(lines) + "\n", sent_on(parsed.get("Date"))


def addresses_text(value: str) -> str:
    """An address field as a search sees it: ``Name <mailbox@host>`` for each address,
    group names kept, comments dropped but one standing in for a missing name (imaptest's
    search-addresses; RFC 3501 §6.4.4 searches the field, not its comments)."""
    out = []
    for name, _route, mailbox, host in parse_addresses(value.encode("utf-8", "surrogateescape")):
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


def _parts(body: bytes):
    """The message's leaf parts; a single-part message without the full parser's copy."""
    head = header_block(body)
    message = BytesHeaderParser(policy=compat32).parsebytes(head)
    if message.get_content_maintype() == "multipart":
        return message_from_bytes(body, policy=compat32).walk()
    rest = body[len(head):]
    rest = rest[2:] if rest.startswith(b"\r\n") else rest[1:] if rest.startswith(b"\n") else rest
    message.set_payload(rest.decode("ascii", "surrogateescape"))   # as BytesParser stores it
    return [message]


def body_text(body: bytes) -> str:
    """The decoded text of every text/* part, folded, at most TEXT_LIMIT characters."""
    pieces, size = [], 0
    for part in _parts(body):
        if part.get_content_maintype() != "text" or part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        try:
            text = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
        except LookupError:                                   # an unknown charset name
            text = payload.decode("utf-8", errors="replace")
        if part.get_content_subtype() == "html":
            text = html.unescape(_MARKUP.sub(" ", text))
        pieces.append(fold(text).strip())
        size += len(pieces[-1])
        if size >= TEXT_LIMIT:
            break
    return " ".join(p for p in pieces if p)[:TEXT_LIMIT]
