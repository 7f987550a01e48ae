"""Finding the facts in a bounce, however the customer forwarded it.

Why: the desk used to read bounces by eye and type From, To, the time and the ref into
``mailstack rejections``.  This reads them from what the customer sends: an RFC 3464
delivery status notification, a free-text bounce (Postfix, Exim, qmail, Exchange, Gmail),
a message forwarded with the bounce attached (``message/rfc822``) or quoted inline, or one
pasted error line.  MIME is parsed by the standard library's ``email`` package
(``policy.default``); text by ``bounce_text``.  Nothing here raises on garbage: what was
found is returned, and ``Facts.missing`` says what was not.

Standards: RFC 3464 (message/delivery-status: Reporting-MTA, Remote-MTA, Final-Recipient,
Diagnostic-Code, Arrival-Date, Last-Attempt-Date), RFC 6522 (multipart/report, text/
rfc822-headers), RFC 5322 §3.6 (Date, From, To, Received), RFC 2046 §5.2.1 (message/rfc822).
Security: input is untrusted and capped at MAX_INPUT octets before any parsing, and cut
at MAX_PARTS boundary lines before the email package sees it; nested messages are followed
at most MAX_DEPTH deep; every failure of a part is caught and the
part skipped.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.utils import getaddresses, parsedate_to_datetime

from mailstack.desk import bounce_text as bt
from mailstack.desk.bounce_text import RemoteReply

MAX_INPUT = 512 * 1024
MAX_DEPTH = 5
MAX_PARTS = 200
HEADER_START = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:[ \t]?\S", re.M)
BOUNCE_SUBJECT = re.compile(r"undeliver|returned|failure|delivery status|not delivered|"
                            r"couldn't be delivered|could not be delivered|failed", re.I)


@dataclass
class Facts:
    """What a bounce says; None where it does not say it."""

    style: str = "text"                   # dsn, mime, forwarded, text
    ref: str | None = None
    reply: RemoteReply | None = None
    client_ip: str | None = None          # the sending server's address
    client_ip_from: str = ""              # where it was read
    recipient: str | None = None
    sender: str | None = None
    at: datetime | None = None            # the earliest time the bounce gives
    latest: datetime | None = None        # the latest one (the last attempt, the bounce)
    remote_hosts: list = field(default_factory=list)   # (name, ip) the sender's MTA tried
    connection: str | None = None         # how a connection failed, when no reply came
    truncated: bool = False

    def found(self) -> dict:
        return {k: str(v) for k, v in (
            ("ref", self.ref), ("reply", self.reply), ("client_ip", self.client_ip),
            ("recipient", self.recipient), ("sender", self.sender),
            ("time", self.at and self.at.isoformat(timespec="seconds")),
            ("remote_host", ", ".join(f"{h or '?'}[{ip or '?'}]" for h, ip in self.remote_hosts)),
            ("connection", self.connection)) if v}

    def missing(self) -> list[str]:
        wanted = {"ref": "our reference (ref …)", "reply": "the error text (SMTP reply)",
                  "client_ip": "the sending server's IP", "recipient": "the recipient",
                  "sender": "the sender", "time": "the time"}
        have = self.found()
        return [label for key, label in wanted.items() if key not in have
                and not (key == "reply" and self.connection)]


@dataclass
class _Gathered:
    texts: list = field(default_factory=list)
    bounce_headers: list = field(default_factory=list)     # header blocks, outermost first
    original_headers: list = field(default_factory=list)
    dsn: list = field(default_factory=list)                # dicts of DSN fields
    parts: int = 0


def read(data: bytes | str) -> Facts:
    """The facts in ``data`` (a bounce as forwarded); never raises."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    truncated = len(data) > MAX_INPUT
    data = data[:MAX_INPUT]
    gathered = _Gathered()
    style = "text"
    if _looks_like_message(data):
        try:
            message = email.message_from_bytes(_fewer_parts(data), policy=policy.default)
            style = _visit(message, gathered, 0)
        except Exception:                       # the email package on hostile input
            gathered = _Gathered()
    if not gathered.texts and not gathered.dsn:
        gathered.texts.append(data.decode("utf-8", "replace"))
    facts = _facts(gathered)
    facts.style, facts.truncated = style, truncated
    return facts


def _fewer_parts(data: bytes) -> bytes:
    """``data`` cut before its MAX_PARTS-th boundary-like line: the email package's cost
    grows with the number of parts (seconds for thousands), a bounce has a handful."""
    at = -1
    for _ in range(MAX_PARTS):
        at = data.find(b"\n--", at + 1)
        if at < 0:
            return data
    return data[:at]


def _looks_like_message(data: bytes) -> bool:
    head = data.lstrip()[:2000]
    return bool(HEADER_START.match(head)) and (b"\n\n" in data or b"\r\n\r\n" in data)


def _is_bounce(message) -> bool:
    if message.get_content_type() == "multipart/report":
        return True
    sender, subject = str(message.get("From", "")), str(message.get("Subject", ""))
    return bool(bt.ROBOT.search(sender)) or bool(BOUNCE_SUBJECT.search(subject))


def _visit(message, gathered: _Gathered, depth: int, inside_bounce: bool = False) -> str:
    """Walk one message; returns its style (dsn, mime, forwarded)."""
    bounce = depth == 0 or _is_bounce(message) or not inside_bounce
    (gathered.bounce_headers if bounce else gathered.original_headers).append(message)
    style = "mime"
    for part in _parts(message, gathered):
        kind = part.get_content_type()
        try:
            if kind == "message/delivery-status":
                gathered.dsn += _dsn_fields(part)
                style = "dsn"
            elif kind == "text/rfc822-headers":
                gathered.original_headers.append(email.message_from_string(
                    _text(part), policy=policy.default))
            elif kind == "message/rfc822" and depth < MAX_DEPTH:
                inner = part.get_payload(0)
                nested = _visit(inner, gathered, depth + 1, inside_bounce or _is_bounce(message))
                if _is_bounce(inner) and depth == 0 and not _is_bounce(message):
                    style = "forwarded"
                elif style == "mime" and nested == "dsn":
                    style = "dsn"
            elif kind.startswith("text/"):
                gathered.texts.append(_text(part))
        except Exception:                      # one broken part does not spoil the rest
            continue
    return style


def _parts(message, gathered: _Gathered):
    """The leaf parts and nested messages of ``message``, not descending into the latter."""
    if message.get_content_maintype() != "multipart":
        yield message
        return
    for part in message.iter_parts():
        gathered.parts += 1
        if gathered.parts > MAX_PARTS:
            return
        if part.get_content_maintype() == "multipart":
            yield from _parts(part, gathered)
        else:
            yield part


def _text(part) -> str:
    try:
        text = part.get_content()
    except Exception:
        payload = part.get_payload(decode=True) or b""
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
    if not isinstance(text, str):
        text = str(text)
    if part.get_content_type() == "text/html":
        text = re.sub(r"<br\s*/?>|</p>|</div>|</tr>", "\n", text, flags=re.I)
        text = re.sub(r"<[^>]*>", " ", text)
    return text


def _dsn_fields(part) -> list[dict]:
    """The field groups of a message/delivery-status part (per-message, per-recipient)."""
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else [
        email.message_from_string(b, policy=policy.default)
        for b in re.split(r"\r?\n\r?\n", str(payload))]
    return [{k.lower(): " ".join(str(v).split()) for k, v in block.items()} for block in blocks]


def _facts(g: _Gathered) -> Facts:
    facts = Facts()
    texts = g.texts + [f"{k}: {v}" for block in g.dsn for k, v in block.items()]
    everything = "\n\n".join(texts)
    replies = bt.replies_in("\n\n".join(
        [b["diagnostic-code"] for b in g.dsn if "diagnostic-code" in b] + texts))
    facts.reply = _best(replies)
    refs = bt.refs_in(everything)
    facts.ref = refs[0] if refs else None
    hosts = list(dict.fromkeys(bt.remote_hosts(everything)))
    named = {h for h, ip in hosts if ip}
    facts.remote_hosts = [(h, ip) for h, ip in hosts if ip or h not in named]
    facts.connection = None if facts.reply else bt.connection_failure(everything)
    facts.recipient = _recipient(g, everything, facts.reply)
    facts.sender = _sender(g, everything)
    facts.client_ip, facts.client_ip_from = _client_ip(g, facts)
    times = sorted(t for t in _times(g, everything) if t is not None)
    facts.at, facts.latest = (times[0], times[-1]) if times else (None, None)
    return facts


def _best(replies: list[RemoteReply]) -> RemoteReply | None:
    """Ours first (it carries a ref), then a permanent reply, then any."""
    ranked = sorted(replies, key=lambda r: (bt.REF.search(r.text) is None, r.code < 500))
    return ranked[0] if ranked else None


def _recipient(g: _Gathered, text: str, reply: RemoteReply | None) -> str | None:
    in_reply = bt.first_address(bt.RECIPIENT_PATTERNS[1:2], reply.text) if reply else None
    found = in_reply or bt.first_address(bt.RECIPIENT_PATTERNS, text)
    if found:
        return found
    for headers in g.original_headers:
        addresses = getaddresses([str(v) for v in headers.get_all("To", [])])
        if len(addresses) == 1 and "@" in addresses[0][1]:
            return addresses[0][1].lower()
    return None


def _sender(g: _Gathered, text: str) -> str | None:
    found = bt.first_address(bt.SENDER_PATTERNS, text)
    if found:
        return found
    for headers in g.original_headers:
        for name in ("Return-Path", "From"):
            address = _one_address(headers.get(name))
            if address:
                return address
    for headers in reversed(g.bounce_headers):         # the bounce went back to the sender
        if bt.ROBOT.search(str(headers.get("From", ""))):
            address = _one_address(headers.get("To"))
            if address:
                return address
    inline = bt.inline_fields(text).get("sender")
    return _one_address(inline) if inline else None


def _one_address(value) -> str | None:
    if value is None:
        return None
    try:
        addresses = getaddresses([str(value)])
    except Exception:
        return None
    found = [a for _, a in addresses if "@" in a]
    return found[0].lower() if len(found) == 1 else None


def _client_ip(g: _Gathered, facts: Facts) -> tuple[str | None, str]:
    """The sending server: named in our reply, else the hop that handed us the bounce
    (a Received ``from`` the Reporting-MTA)."""
    ip = bt.client_ip_in_reply(facts.reply)
    if ip:
        return ip, "our reply text"
    reporting = {str(b.get("reporting-mta", "")).split(";")[-1].strip().lower().rstrip(".")
                 for b in g.dsn} - {""}
    for headers in g.bounce_headers + g.original_headers:
        for received in headers.get_all("Received", []):
            hop = re.match(rf"\s*from\s+({bt.HOST})\s*\(([^)]*)\)", str(received))
            peer = re.search(rf"\[({bt.IP})\]", hop.group(2)) if hop else None
            if peer and hop.group(1).lower() in reporting:
                return bt.valid_ip(peer.group(1)), "a Received line naming the Reporting-MTA"
    return None, ""


def _times(g: _Gathered, text: str):
    for block in g.dsn:
        for name in ("arrival-date", "last-attempt-date"):
            yield _date(block.get(name))
    for headers in g.bounce_headers[-1:] + g.original_headers[:1]:
        yield _date(headers.get("Date"))
    yield _date(bt.inline_fields(text).get("date"))


def _date(value) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
