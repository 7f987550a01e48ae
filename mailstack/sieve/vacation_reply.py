"""The vacation reply as a message: its header fields and its body (RFC 5230 §5).

Why the email package builds it: the reply mixes text the customer wrote (any language)
with fields from the original (its subject, its Message-ID), and each must be encoded
right -- RFC 2047 encoded words in the Subject and display names only when they are not
ASCII (§4.3), a body in UTF-8 with a transfer encoding that survives any relay -- and
no value from the original may break the header (a CR or LF in a Subject is removed
before it is used).  ``email.policy.SMTP`` does the encoding and writes CRLF lines.

The fields: From, To (the envelope sender answered, §5.5), Subject (``:subject``, or
"Auto: " and the original's, or "Automated reply", §5.3), Date (the injected clock, §5.2),
Message-ID (our host name), In-Reply-To and References from the original's Message-ID
(§5.8), Auto-Submitted: auto-replied (RFC 3834 §5, §5.6).  The body: the reason as
text/plain in UTF-8, 7bit when it is short-lined ASCII and quoted-printable otherwise; with
``:mime`` the reason is the MIME entity itself (§4.4), whose header may hold only
Content-* fields in ASCII (§5: 8bit header material is refused, ``mime_problem``), and
whose parts with non-ASCII text and no transfer encoding are made quoted-printable: the
reply is 7-bit, whatever relays it meets.

Standards: RFC 5230 §4.3, §4.4, §5; RFC 3834 §3.1.5, §5; RFC 2047; RFC 2045 §6;
RFC 5322 §3.6.4 (In-Reply-To, References).
"""

from __future__ import annotations

import quopri
import re
import uuid
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import Parser
from email.utils import format_datetime

from mailstack.sieve.message_view import MessageView

_POLICY = policy.SMTP
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_FIELD_LINE = re.compile(r"[!-9;-~]+:")
_LONGEST_7BIT_LINE = 998
DEFAULT_SUBJECT = "Automated reply"


def mime_problem(reason: str) -> str | None:
    """Why ``reason`` is not a MIME entity we send (RFC 5230 §4.4, §5), or None."""
    for line in reason.replace("\r\n", "\n").split("\n"):
        if not line:
            return None
        if not line.isascii():
            return "its header fields hold 8bit characters"
        if line[0] in " \t":
            continue
        if not _FIELD_LINE.match(line):
            return "it does not begin with MIME header fields and a blank line"
        name = line.split(":", 1)[0].lower()
        if not (name.startswith("content-") or name == "mime-version"):
            return f"its header has {name}, not a MIME field"
    return "it has no blank line after its header fields"


def _one_line(text: str) -> str:
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def subject_of(given: str | None, message: MessageView) -> str:
    if given is not None:
        return _one_line(given) or DEFAULT_SUBJECT
    original = message.header("subject")
    return f"Auto: {_one_line(original[0])}" if original and original[0] else DEFAULT_SUBJECT


def _threading(message: MessageView) -> tuple[str | None, str | None]:
    """(In-Reply-To, References) of a reply to ``message`` (RFC 5322 §3.6.4)."""
    ids = message.header("message-id")
    found = _MESSAGE_ID.search(ids[0]) if ids else None
    if found is None:
        return None, None
    parent = found.group()
    earlier = _MESSAGE_ID.findall(" ".join(message.header("references")))
    if not earlier:
        replied = _MESSAGE_ID.findall(" ".join(message.header("in-reply-to")))
        earlier = replied if len(replied) == 1 else []
    return parent, " ".join([*earlier[-20:], parent])


def _plain_body(reply: EmailMessage, reason: str) -> None:
    text = reason.replace("\r\n", "\n")
    longest = max((len(line) for line in text.split("\n")), default=0)
    plain = text.isascii() and longest <= _LONGEST_7BIT_LINE
    reply.set_content(text, charset="utf-8", cte="7bit" if plain else "quoted-printable")


def _seven_bit(part) -> None:
    """A leaf whose text is not ASCII and that names no transfer encoding: its text in its
    charset (UTF-8 when it names none or one that cannot hold it), quoted-printable."""
    payload = part.get_payload()
    if not isinstance(payload, str) or payload.isascii() or "content-transfer-encoding" in part:
        return
    charset = part.get_content_charset() or "utf-8"
    try:
        data = payload.encode(charset)
    except (LookupError, UnicodeError):
        data, charset = payload.encode("utf-8"), "utf-8"
    part.set_payload(quopri.encodestring(data).decode("ascii"))
    part["Content-Transfer-Encoding"] = "quoted-printable"
    if part.get_content_maintype() == "text":
        part.set_param("charset", charset)


def _mime_body(reply: EmailMessage, reason: str) -> None:
    entity = Parser(policy=_POLICY).parsestr(reason.replace("\r\n", "\n"))
    for part in entity.walk():
        if not part.is_multipart():
            _seven_bit(part)
    reply["MIME-Version"] = "1.0"
    for name, value in entity.items():
        if name.lower() != "mime-version":
            reply[name] = value
    reply.preamble, reply.epilogue = entity.preamble, entity.epilogue
    reply.set_payload(entity.get_payload())


def build(vacation, message: MessageView, *, to: str, from_: str, at: datetime,
          hostname: str) -> bytes:
    """The reply's octets, CRLF lines (module docstring)."""
    reply = EmailMessage(policy=_POLICY)
    reply["From"] = from_
    reply["To"] = to
    reply["Subject"] = subject_of(vacation.subject, message)
    reply["Date"] = format_datetime(at)
    reply["Message-ID"] = f"<{int(at.timestamp())}.{uuid.uuid4().hex}@{hostname}>"
    parent, references = _threading(message)
    if parent is not None:
        reply["In-Reply-To"] = parent
        reply["References"] = references
    reply["Auto-Submitted"] = "auto-replied"
    if vacation.mime:
        _mime_body(reply, vacation.reason)
    else:
        _plain_body(reply, vacation.reason)
    return reply.as_bytes()
