"""Where an accepted message goes: local INBOXes and the outbound queue, in one transaction.

Why all-or-nothing: the SMTP 250 after DATA promises every accepted recipient a copy.  If
the store fails half-way, nobody gets the message and the sender gets a 451, so its retry
cannot create duplicates for the recipients that were already served.

Why the message arrives as a spool (``message/spool.py``) and is read in the store's
thread: a large message then exists in memory once, and only while it is being stored.
How many bytes are being stored at once is bounded by the store's ``body_budget``
(store/budget.py): ten 25 MB messages finishing DATA together are stored one or two at a
time, not all at once (issue 13, case 5).  The 250 still comes only after the COMMIT.
The message is read and analysed in that thread before it takes SQLite's writer lock
(``Database.run_prepared``): the analysis needs no database, so the lock is held for the
SQL alone and other writers do not wait for it (issue 16).

Mail that leaves for remote recipients is DKIM-signed here, once, as it is queued
(``dkim/signer.py``): in the same preparation, off the reactor and before the writer lock;
a delivery with local recipients only costs nothing more.

Forwarding (an alias with remote targets, an SRS bounce address): the forwarded copy is
one more queued message in the same transaction, so one 250 covers the local copies and
the forward.  It is the message as received with our Received field on top -- nothing
else changes, so the author's DKIM signature still verifies at the destination (RFC 6376
§4.2: DMARC passes through it) -- and its envelope sender is rewritten by SRS
(``srs.py``: the null sender stays null), so the destination's SPF check of it passes.
It carries no DKIM signature of ours unless a customer who logged in sent it; no ARC set
either (docs/architecture.md says why).

Standards: RFC 5321 §4.4 (the Received trace header; Return-Path on local copies only),
§6.1 (reliable delivery), RFC 6376 (DKIM).
Security: the Received header is built from our own facts; what the client or its DNS
chose (the HELO argument, the PTR name) is made printable and cut to 255 characters, so it
cannot add header lines.  Every copy and queue entry commits in one transaction, so a 451
never leaves half a delivery and a retry makes no duplicates; bodies are stored under the
process's byte budget.  A queued copy is DKIM-signed only by its envelope sender's own
domain (the policy proved it theirs), so a customer cannot borrow another hosted domain's
signature by writing it in ``From:``; a forwarded copy that came on port 25 is not signed
by us at all, and goes only to the targets of an alias the operator made or to the
address a verified SRS address stands for (``policy/forwarding.py``).  Not here: who may
send to whom -- relay, recipient and quota checks are the policy's, made before DATA
(``policy/``).
"""

from __future__ import annotations

import functools

from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import format_datetime

from mailstack import clock as clocks
from mailstack.delivery import bounce, sieve_delivery, spam_copies
from mailstack.dkim import body_hash
from mailstack.dkim.signer import HEAD_LIMIT as signer_head_limit, NO_SIGNER
from mailstack.store import mailboxes, queue, submissions


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
    account: str | None = None     # the customer who sent it (AUTH or login window)
    method: str | None = None      # "auth" | "pop-before-smtp"
    port: int | None = None        # the port the client connected to


def return_path(sender: str) -> bytes:
    """The Return-Path header of final delivery (RFC 5321 §4.4: the delivering server MUST
    add it); ``<>`` for the null sender.  The address was parsed at MAIL FROM: no CR or LF."""
    return f"Return-Path: <{sender}>\r\n".encode()


def received_header(trace: TraceFacts, at: datetime) -> bytes:
    """A RFC 5321 §4.4 Received header, folded, ending in CRLF."""
    name = f"{_clean(trace.client_name)} " if trace.client_name else ""
    lines = [f"Received: from {_clean(trace.helo)} ({name}[{trace.client_ip}])",
             f"\tby {trace.hostname} (mailstack) with {trace.protocol} id {trace.queue_id}"]
    if trace.tls_version:
        lines[-1] += f"\r\n\t(using {trace.tls_version})"
    if trace.account:
        how = "Authenticated sender" if trace.method == "auth" else "POP-before-SMTP sender"
        lines[-1] += f"\r\n\t({how}: {trace.account})"
    stamp = format_datetime(at)
    if trace.recipient:
        lines.append(f"\tfor <{trace.recipient}>; {stamp}")
    else:
        lines[-1] += f"; {stamp}"
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")


HEAD_LIMIT = 64 * 1024    # octets of a message read for its User-Agent


def mail_program(body: bytes) -> str | None:
    """The User-Agent or X-Mailer header of a submitted message (the report shows it)."""
    end = body.find(b"\r\n\r\n", 0, HEAD_LIMIT)
    head = body[:end if end >= 0 else HEAD_LIMIT]     # a slice: never a copy of the body
    for line in head.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in (b"user-agent", b"x-mailer"):
            return value.strip().decode("utf-8", "replace")[:255] or None
    return None


def _clean(name: str) -> str:
    """The HELO argument and the PTR name are the client's choice: keep them printable and
    short in our header (a PTR label may hold CR LF, RFC 2181 §11)."""
    text = "".join(c if 33 <= ord(c) < 127 else "?" for c in name)[:255]
    return text or "unknown"


def local_copy(sender: str, accepted, spool, received: bytes, dialect: str,
               auth_header: bytes = b""):
    """(what to store, its ``MessageFacts``) of the copy for local INBOXes, or None.

    The message is read from ``spool`` here, in the store's thread but before the writer
    lock (``Database.run_prepared``), behind ``return_path``, ``received`` and
    ``auth_header`` (port 25's Authentication-Results of this hop, RFC 8601: local copies
    only): whole once,
    for the search facts and structure of local copies (``mailboxes.prepared_facts``)."""
    if not any(r.account_ids for r in accepted):
        return None
    # Final delivery: Return-Path first (a relayed copy must not carry one).
    return mailboxes.prepared_facts(
        spool.with_prefix(return_path(sender) + received + auth_header), dialect)


def signatures(signer, sender: str, accepted, spool, at: datetime,
               proven: bool = False) -> bytes:
    """The DKIM-Signature fields of the copy queued for remote recipients (b"" for none).

    In the store's thread: the header is looked at, and only a message the signer signs
    (``From:`` the envelope sender's domain, which has keys: ``dkim/signer.py``) is read
    further, a piece at a time, for its body hash.  A forwarded copy is signed only for a
    ``proven`` sender (a customer who logged in): on port 25 nobody proved the ``From:``,
    and our signature must not vouch for it."""
    if not any(r.remote or (proven and getattr(r, "forward", ())) for r in accepted):
        return b""
    head = spool.head(signer_head_limit)
    end = head.find(b"\r\n\r\n")
    return signer.sign(head, lambda: _body_pieces(spool, end + 4), at, sender.rpartition("@")[2])


def _body_pieces(spool, start: int):
    """The spool's octets from ``start`` (the body's first), in pieces."""
    offset = 0
    for piece in spool.pieces(body_hash.PIECE):
        if offset + len(piece) > start:
            yield piece[max(0, start - offset):]
        offset += len(piece)


def store_message(conn, sender: str, accepted, spool, received: bytes, at: datetime, *,
                  account_id=None, client_ip=None, queue_id=None, submission=None,
                  undeliverable=(), hostname: str, prepared=None, signed: bytes = b"",
                  sign=None, junk: bool = False, forward_sender: str | None = None,
                  screening=None, sieve=None) -> int:
    """Copy into local INBOXes, queue remote recipients, and record a customer's submission.

    ``prepared`` is ``local_copy(...)``, computed before the transaction; without it, it
    is computed here.  ``signed``: the DKIM-Signature fields put on top of the queued copy;
    ``sign``: the signer's ``signatures``, for the bounce of ``undeliverable`` if it leaves.
    ``undeliverable`` [(address, status, diagnostic)]: recipients accepted at RCPT that
    cannot take the message after all (a mailbox filled meanwhile); their bounce is filed
    in the same transaction, so the 250 covers both the copies and the notice.
    ``junk``: the local copies go to each account's Junk folder (a DMARC quarantine);
    ``screening`` (``store.spam_filing.Screening``, port 25's rspamd scan): each account's
    SPAM Blocker and sender lists choose its copy's folder and tag (``spam_copies``).
    ``forward_sender``: the envelope sender of the copy for the addresses the recipients
    forward to (SRS: ``srs.py``); None: nothing is forwarded.  ``sieve``
    (``sieve_delivery.SieveRun``): the recipients' Sieve scripts choose their copies."""
    local = sorted({i for r in accepted for i in r.account_ids})
    remote = [r.address for r in accepted if r.remote]
    forwards = forwarded(accepted) if forward_sender is not None else []
    quoting = submission is not None or undeliverable    # User-Agent, bounce: the header
    head = spool.head(HEAD_LIMIT) if quoting else b""
    stored = []
    if local:
        if prepared is None:
            prepared = local_copy(sender, accepted, spool, received, conn.dialect.name)
        if sieve is not None:
            stored = sieve.deliver(conn, local, prepared, at, junk=junk, screening=screening)
        else:
            stored = spam_copies.deliver(conn, local, prepared, at, junk=junk,
                                         screening=spam_copies.worth_asking(screening, accepted))
    if submission is not None:
        submissions.record(conn, replace(submission, user_agent=mail_program(head)))
    if remote:
        queue.enqueue(conn, sender, remote, spool.with_prefix(signed + received), at,
                      account_id=account_id, client_ip=client_ip, queue_id=queue_id)
    if forwards:         # the message as it came, behind our Received (and our signature)
        queue.enqueue(conn, forward_sender, forwards, spool.with_prefix(signed + received),
                      at, account_id=account_id, client_ip=client_ip, queue_id=queue_id)
    if undeliverable:
        bounce.return_to_sender(conn, hostname, sender, undeliverable, received + head, at,
                                queue_id, sign=sign)
    return len(stored)


def forwarded(accepted) -> list[str]:
    """The remote addresses the accepted recipients forward to, each once."""
    return list(dict.fromkeys(t for r in accepted for t in getattr(r, "forward", ())))


def _store_prepared(conn, prepared, *args, **kwargs) -> int:
    local, signed = prepared
    return store_message(conn, *args, prepared=local, signed=signed, **kwargs)


class MessageRouter:
    """Stores accepted mail; ``on_queued()`` is called after a COMMIT that queued some.

    ``on_queued`` is how the outbound queue learns of new work at once (its ``kick``)
    without the router knowing the queue: ``service.py`` builds the queue first.
    ``signer`` DKIM-signs what leaves (``dkim/signer.py``; ``NO_SIGNER``: nothing).
    ``srs`` (``srs.SRS``) rewrites the sender of forwarded copies; None: they keep it.
    ``sieve`` (``sieve_delivery.Sieve``) runs the recipients' Sieve scripts; None: none.
    """

    def __init__(self, db, clock, on_queued=None, signer=NO_SIGNER, srs=None, sieve=None):
        self.db, self.clock = db, clock
        self.on_queued = on_queued
        self.signer = signer
        self.srs = srs
        self.sieve = sieve

    def store(self, sender: str, accepted, spool, trace: TraceFacts, *, account=None,
              tls: bool = False, undeliverable=(), auth_header: bytes = b"", junk: bool = False,
              forward: bool = True, screening=None):
        """Deferred that fires only after the COMMIT of every copy and queue entry.

        ``spool`` holds the message as received; the caller closes it when this fires.
        ``auth_header`` and ``junk``: what port 25's authentication decided (the header
        in front of local copies, and their folder); ``forward`` False: the policy let
        the message in but not out (a DMARC ``p=reject`` failure): no forwarded copy;
        ``screening``: port 25's scan, for each account's SPAM Blocker (``spam_copies``)."""
        forwards = forward and bool(forwarded(accepted))
        scripted = self.sieve is not None and any(getattr(r, "sieve", ()) for r in accepted)
        if any(r.remote for r in accepted) or forwards or (undeliverable and sender) or scripted:
            d = self.signer.ready()      # the keys in memory before the store's thread signs
            d.addCallback(lambda _: self._store(sender, accepted, spool, trace, account, tls,
                                                undeliverable, auth_header, junk, forwards,
                                                screening))
            return d
        return self._store(sender, accepted, spool, trace, account, tls, undeliverable,
                           auth_header, junk, forwards, screening)

    def _store(self, sender, accepted, spool, trace, account, tls, undeliverable,
               auth_header, junk, forwards=False, screening=None):
        at = clocks.now(self.clock)
        forward_sender = None
        if forwards:
            forward_sender = self.srs.forward(sender, at) if self.srs is not None else sender
        submission = None
        if account is not None:
            submission = submissions.Submission(
                at=at, account_id=account.id, username=account.address,
                client_ip=trace.client_ip, method=trace.method or "auth", tls=tls,
                recipients=len(accepted), queue_id=trace.queue_id, helo=trace.helo[:255],
                user_agent=None, port=trace.port)
        received = received_header(trace, at)
        dialect = self.db.engine.dialect.name
        run = None if self.sieve is None else self.sieve.for_message(
            sender, accepted, spool, received, trace.queue_id, at_data=account is None,
            seen=return_path(sender) + received + auth_header)
        # With the deliveries of other sessions of the moment in one transaction (group
        # commit): one COMMIT, one flush, for several messages, each 250 after it.
        d = self.db.body_budget.run(
            spool.size, self.db.group.run_prepared,
            lambda: (local_copy(sender, accepted, spool, received, dialect, auth_header),
                     signatures(self.signer, sender, accepted, spool, at,
                                proven=account is not None)),
            functools.partial(
                _store_prepared, account_id=account.id if account is not None else None,
                client_ip=trace.client_ip, queue_id=trace.queue_id, submission=submission,
                undeliverable=undeliverable, hostname=trace.hostname,
                sign=self.signer.signatures, junk=junk, forward_sender=forward_sender,
                screening=screening, sieve=run),
            sender, accepted, spool, received, at)
        queued = any(r.remote for r in accepted) or forwards or (undeliverable and sender)
        if queued and self.on_queued is not None:
            d.addCallback(lambda stored: (self.on_queued(), stored)[1])
        if run is not None:
            d.addCallback(sieve_delivery.after_commit, run, self.on_queued, queued)
        return d
