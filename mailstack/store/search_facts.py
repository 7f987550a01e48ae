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


def search_facts(body: bytes) -> tuple[str, datetime | None]:
    """(search_headers, sent_at) of an RFC 5322 message."""
    parsed = BytesHeaderParser(policy=compat32).parsebytes(header_block(body))
    lines = []
    for name, value in parsed.items():
        value = " ".join(str(value).split())
        lines.append(f"{name.strip().lower()}: {_decoded(value).lower()}")
    sent_at = None
    date = parsed.get("Date")
    if date:
        try:
            sent_at = parsedate_to_datetime(str(date))
            if sent_at.tzinfo is None:
                sent_at = sent_at.replace(tzinfo=timezone.utc)
            sent_at = sent_at.astimezone(timezone.utc)
        except (TypeError, ValueError, IndexError, OverflowError):
            sent_at = None
    return "\n".join(lines) + "\n", sent_at


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
