"""Local delivery: one message, one copy per recipient INBOX, in one transaction.

Why all-or-nothing: the SMTP 250 after DATA promises every accepted recipient a copy.  If
the store fails half-way, nobody gets the message and the sender gets a 451, so its retry
cannot create duplicates for the recipients that were already served.

Standards: RFC 5321 §4.4 (the Received trace header), §6.1 (reliable delivery).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from mailstack import clock as clocks
from mailstack.store import mailboxes


@dataclass(frozen=True)
class TraceFacts:
    """What the Received header records about the hop that handed us the message."""

    helo: str
    client_ip: str
    client_name: str | None
    hostname: str
    protocol: str          # SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA (RFC 3848)
    queue_id: str
    tls_version: str | None = None
    recipient: str | None = None   # named only when there is exactly one


def received_header(trace: TraceFacts, at: datetime) -> bytes:
    """A RFC 5321 §4.4 Received header, folded, ending in CRLF."""
    name = f"{trace.client_name} " if trace.client_name else ""
    lines = [f"Received: from {_clean(trace.helo)} ({name}[{trace.client_ip}])",
             f"\tby {trace.hostname} (mailstack) with {trace.protocol} id {trace.queue_id}"]
    if trace.tls_version:
        lines[-1] += f"\r\n\t(using {trace.tls_version})"
    stamp = format_datetime(at)
    if trace.recipient:
        lines.append(f"\tfor <{trace.recipient}>; {stamp}")
    else:
        lines[-1] += f"; {stamp}"
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")


def _clean(helo: str) -> str:
    """The HELO argument is client-supplied: keep it printable and short in our header."""
    text = "".join(c if 33 <= ord(c) < 127 else "?" for c in helo)[:255]
    return text or "unknown"


class LocalDelivery:
    def __init__(self, db, clock):
        self.db = db
        self.clock = clock

    def deliver(self, account_ids, body: bytes, trace: TraceFacts):
        """Deferred of the stored MessageInfos; fires only after the COMMIT."""
        at = clocks.now(self.clock)
        message = received_header(trace, at) + body
        return self.db.run(mailboxes.deliver, sorted(set(account_ids)), message, at)
