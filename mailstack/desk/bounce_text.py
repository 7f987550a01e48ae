"""The facts a bounce states in free text: the remote reply, our ref, hosts, addresses.

Why patterns and not one parser per MTA: customers forward bounces as they get them --
Postfix's, Exim's, qmail's, Exchange's and Gmail's wordings, rewrapped by mail programs,
quoted with ``>``, or one line pasted into a ticket.  What they share is what we need: the
SMTP reply we sent (RFC 5321 §4.2 code, RFC 3463 enhanced status, our text with its
``(ref …)``), the host and address it came from, the address it was about, and for mail
that never got a banner, the words for a failed connection.

Standards: RFC 5321 §4.2, RFC 3463, RFC 3464 §2.3.6 (Diagnostic-Code).
Security: input is untrusted text; every pattern here is linear (no nested quantifiers)
and runs on input the caller has already capped (``bounce_parse.MAX_INPUT``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MAX_REPLY = 1000          # RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets
REF = re.compile(r"\(ref ([A-HJ-NP-Z2-9]{8})\)")
LOOSE_REF = re.compile(r"\b[Rr][Ee][Ff]:? ?([A-HJ-NP-Z2-9]{8})\b")
REPLY = re.compile(r"(?<![\d.\w])([45]\d\d)[ -]([45]\.\d{1,3}\.\d{1,3})\s+(\S.*)")
ADDRESS = r"[^\s<>@\"'(),;:\[\]]+@[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9]"
IP = r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})"
HOST = r"[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}"
REMOTE_HOSTS = [
    re.compile(rf"\b(?:host|connect to)\s+({HOST})\.?\s?\[({IP})\]"),        # Postfix, Exim
    re.compile(rf"\[({HOST})\.?\s+({IP})(?::[^\]]*)?\]"),                    # Gmail-style
    re.compile(rf"\bRemote-MTA:\s*dns;\s*({HOST})\.?(?:\s*\[({IP})\])?", re.I),
    re.compile(rf"\bRemote server\s+({HOST})\s*\[({IP})\]", re.I),      # Exchange
]
QMAIL_PEER = re.compile(rf"(?:Connected to ({IP}) but|^({IP}) (?:does not like|refused))", re.M)
CLIENT_IN_REPLY = re.compile(rf"\[({IP})\]")
# Words for a connection that never got a banner, in the languages of the usual MTAs.
CONNECTION_FAILURES = [
    ("timed out", re.compile(r"timed? ?out|timeout|not responding|did not respond", re.I)),
    ("refused", re.compile(r"connection refused|refused to talk|actively refused", re.I)),
    ("closed", re.compile(r"lost connection|connection (?:closed|reset|dropped)|closed the "
                          r"connection|unexpected(?:ly)? (?:eof|close)|"
                          r"(?:wasn't|was not|couldn't|could not) (?:able to )?establish|"
                          r"could not be reached|did not accept our requests to connect|"
                          r"unable to connect|"
                          r"couldn't connect", re.I)),
    ("host not found", re.compile(r"host (?:or domain name )?not found|name or service not "
                                  r"known|no mx|nxdomain|domain (?:name )?(?:not found|does "
                                  r"not exist|couldn't be found)|DNS (?:error|lookup)", re.I)),
]
RECIPIENT_PATTERNS = [
    re.compile(rf"(?:Final|Original)-Recipient:\s*rfc822;\s*<?({ADDRESS})>?", re.I),
    re.compile(rf"^[ \t]*<({ADDRESS})>:", re.M),                              # Postfix, ours
    re.compile(rf"RCPT TO:\s*<({ADDRESS})>", re.I),                        # Exim
    re.compile(rf"(?:message to|delivered to|failed to|recipient failed permanently:|"
               rf"cannot be reached:|could not be reached:|"
               rf"recipients or groups:|address\(es\) failed:)\s*<?({ADDRESS})>?", re.I),
    re.compile(rf"^[ \t]*<?({ADDRESS})>?:?[ \t]*$", re.M),                       # an address alone
]
SENDER_PATTERNS = [
    re.compile(rf"X-Postfix-Sender:\s*rfc822;\s*<?({ADDRESS})>?", re.I),
    re.compile(rf"MAIL FROM:\s*<({ADDRESS})>", re.I),
]
QUOTING = re.compile(r"^(?:[ \t]*>)+ ?", re.M)
INLINE_FIELD = re.compile(r"^(From|To|Date|Sent):\s*(.+)$", re.M)
ROBOT = re.compile(r"mailer-daemon|postmaster|mail delivery|microsoftexchange", re.I)
TRAILERS = re.compile(r"\s*(?:\((?:in reply to|state)[^)]*\)|['\"\]>]+)\s*$", re.I)


@dataclass(frozen=True)
class RemoteReply:
    code: int
    status: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"


def unquoted(text: str) -> str:
    """``text`` with mail-program quoting (``> ``, ``>> ``) taken off every line."""
    return QUOTING.sub("", text)


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, each one line: what wrapping split is joined again."""
    blocks = re.split(r"\n\s*\n", unquoted(text).replace("\r", ""))
    return [" ".join(line.strip() for line in b.splitlines() if line.strip()) for b in blocks]


def replies_in(text: str) -> list[RemoteReply]:
    """Every SMTP reply quoted in ``text``; ours end at their ref, others at the paragraph."""
    found = []
    for block in paragraphs(text):
        for match in REPLY.finditer(block):
            rest = match.group(3)
            ref = REF.search(rest)
            rest = rest[:ref.end()] if ref else TRAILERS.sub("", rest)
            found.append(RemoteReply(int(match.group(1)), match.group(2),
                                     rest.strip()[:MAX_REPLY]))
    return found


def refs_in(text: str) -> list[str]:
    flat = " ".join(paragraphs(text))
    return REF.findall(flat) or LOOSE_REF.findall(flat)


def remote_hosts(text: str) -> list[tuple[str | None, str | None]]:
    """(host name, IP) pairs of the servers a bounce says it tried or talked to."""
    flat = "\n".join(paragraphs(text))
    hosts = [(m.group(1), m.group(2)) for p in REMOTE_HOSTS for m in p.finditer(flat)]
    hosts += [(None, m.group(1) or m.group(2)) for m in QMAIL_PEER.finditer(unquoted(text))]
    return [(h.lower().rstrip(".") if h else None, valid_ip(ip)) for h, ip in hosts
            if h or valid_ip(ip)]


def valid_ip(text: str | None) -> str | None:
    try:
        return ipaddress.ip_address(text).compressed if text else None
    except ValueError:
        return None


def client_ip_in_reply(reply: RemoteReply | None) -> str | None:
    """Our anti-spam replies name the client as ``[ip]``: the surest source of all."""
    found = CLIENT_IN_REPLY.search(reply.text) if reply else None
    return valid_ip(found.group(1)) if found else None


def connection_failure(text: str) -> str | None:
    flat = " ".join(paragraphs(text))
    return next((label for label, p in CONNECTION_FAILURES if p.search(flat)), None)


def first_address(patterns, text: str) -> str | None:
    plain = unquoted(text)
    for pattern in patterns:
        found = pattern.search(plain)
        if found:
            return found.group(1).lower()
    return None


def inline_fields(text: str) -> dict[str, str]:
    """The From/To/Date of a bounce forwarded inline (``-- Forwarded message --``): the To
    after a robot's From is the sender the bounce went back to."""
    fields, robot = {}, False
    for name, value in INLINE_FIELD.findall(unquoted(text)):
        name = name.lower()
        if name == "from":
            robot = bool(ROBOT.search(value))
        elif name == "to" and robot:
            fields.setdefault("sender", value)
        elif name in ("date", "sent"):
            fields.setdefault("date", value)
    return fields
