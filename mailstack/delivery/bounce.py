"""Delivery status notifications (bounces) for recipients we could not deliver to.

Why we never bounce a bounce: a message with the null sender is itself a notification;
answering it could start a loop (RFC 5321 §4.5.5).  The DSN goes to the envelope sender,
from the null sender, as ``multipart/report`` with the original headers only (no need to
send spam back around the world).  ``original`` may be the whole message or only its
start: only the header is read, at most HEADER_LIMIT octets of it, never a copy of the body.

A forwarded copy that bounces here has our SRS address as its sender (``srs.py``): when
that address is in a domain we host, the DSN goes straight to the address it stands for
(we wrote it: no hash to check); in a domain we do not host (the default, our host name)
it goes out like any other and comes back to port 25, where the address is checked.

A DSN that leaves is DKIM-signed by the domain of its ``From:`` (our host name) when that
has keys (``dkim/signer.py``), in the transaction that queues it: it is header-sized.

When a failed recipient's domain looks like a typo of a well-known provider's
(``gmial.com``, ``yahooo.co.jp``: ``desk/did_you_mean.py``), the human-readable part names
the domain probably meant: our customer reads it, not the remote server.

Standards: RFC 3464 (DSN format), RFC 3462/6522 (multipart/report), RFC 3463 (status codes),
RFC 6376 (DKIM).
Security: a message from the null sender never gets a DSN (no bounce loops, RFC 5321
§4.5.5); a DSN quotes only the original's header, at most HEADER_LIMIT octets, so it sends
no body back and costs no read of a large one.  It goes to the envelope sender as given,
which anyone can forge: backscatter is kept low before this point, where the MX refuses
unknown recipients at RCPT instead of bouncing later (``policy/recipients.py``).  Not
here: a remote server's reply text goes into the DSN as it came (the lines of a multi-line
reply joined by a bare LF).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from email.utils import format_datetime

from mailstack import srs
from mailstack.desk.did_you_mean import domain_hint
from mailstack.store import mailboxes, queue, routes

HEADER_LIMIT = 64 * 1024    # octets of the original header quoted at most


def status_of(reply: str, temporary_expired: bool) -> str:
    """The RFC 3463 status for a final failure: from the reply when it has one."""
    found = re.search(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b", reply)
    if found and found.group(1) == "5":
        return ".".join(found.groups())
    return "4.4.7" if temporary_expired else "5.0.0"


def build(hostname: str, sender: str, failures, original: bytes, at: datetime) -> bytes:
    """``failures``: [(recipient, status, diagnostic)]. Returns the DSN, CRLF lines."""
    boundary = f"dsn-{uuid.uuid4().hex}"
    headers = header_of(original)
    human = ["This is the mail system at " + hostname + ".", "",
             "Your message could not be delivered to the following recipient(s):", ""]
    for recipient, status, diagnostic in failures:
        human.append(f"<{recipient}>: {diagnostic} (status {status})")
        meant = domain_hint(recipient)
        if meant:
            human.append(f"  Did you mean <{meant}>? The domain looks mistyped.")
    per_recipient = []
    for recipient, status, diagnostic in failures:
        action = "failed"
        per_recipient += ["", f"Final-Recipient: rfc822; {recipient}", f"Action: {action}",
                          f"Status: {status}", f"Diagnostic-Code: smtp; {diagnostic}"]
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>",
        f"To: <{sender}>",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {format_datetime(at)}",
        f"Message-ID: <{uuid.uuid4().hex}@{hostname}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "", f"--{boundary}", "Content-Type: text/plain; charset=utf-8", "", *human, "",
        f"--{boundary}", "Content-Type: message/delivery-status", "",
        f"Reporting-MTA: dns; {hostname}", f"Arrival-Date: {format_datetime(at)}",
        *per_recipient, "",
        f"--{boundary}", "Content-Type: text/rfc822-headers", "",
    ]
    text = "\r\n".join(lines).encode("utf-8") + b"\r\n" + headers + b"\r\n\r\n"
    return text + f"--{boundary}--\r\n".encode()


def header_of(original: bytes) -> bytes:
    """The original's header without its blank line, at most HEADER_LIMIT octets."""
    end = original.find(b"\r\n\r\n", 0, HEADER_LIMIT)
    if end < 0 and len(original) > HEADER_LIMIT:
        end = original.rfind(b"\r\n", 0, HEADER_LIMIT)       # a whole last line
    return original[:end] if end >= 0 else original[:HEADER_LIMIT]


def _ours(sender: str) -> bool:
    try:
        srs.unwrap(sender)
    except srs.SRSError:
        return False
    return True


def return_to_sender(conn, hostname: str, sender: str, failures, original: bytes, at: datetime,
                     queue_id: str, sign=None) -> str | None:
    """File the DSN in the caller's transaction: a hosted sender's INBOX, else the queue.

    ``sign(message, at)``: the DKIM-Signature fields of a DSN that leaves (the signer's
    ``signatures``: by the domain of its ``From:``, our host name, when it has keys).

    Returns the remote address it was queued for (None when delivered locally or when the
    sender is the null path, which never gets a bounce)."""
    if not sender:
        return None
    dsn = build(hostname, sender, failures, original, at)
    route = routes.route(conn, sender)
    if route.hosted and not route.recipients.account_ids and _ours(sender):
        sender = srs.unwrap(sender)      # a forwarded copy's SRS sender: its origin
        route = routes.route(conn, sender)
    if route.hosted:   # final delivery of a null-sender message (RFC 5321 §4.4)
        mailboxes.deliver(conn, route.recipients.account_ids, b"Return-Path: <>\r\n" + dsn, at)
        return None
    if sign is not None:
        dsn = sign(dsn, at) + dsn
    queue.enqueue(conn, "", [sender], dsn, at, queue_id=f"{queue_id}-dsn")
    return sender
