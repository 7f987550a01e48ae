"""What IMAP SEARCH reads instead of the message body: decoded headers and the Date.

Why: SEARCH FROM/SUBJECT/HEADER and SENTSINCE run in SQL (RFC 3501 §6.4.4), so they need
columns, not bodies.  ``search_headers`` is the header block unfolded, RFC 2047-decoded and
lower-cased, one ``name: value`` per line; ``sent_at`` is the Date header in UTC.  Both are
computed once, when the message is stored.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime


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
