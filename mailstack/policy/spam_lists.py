"""Who the sender of a port-25 message is, for the customers' own allow and block lists
(SPAM Blocker, issue 18, item 4), and the allow check on rspamd's refusals.

Why: a list entry names a sender; a message has two names for its sender, the envelope
sender (MAIL FROM) and the address in ``From:``.  Both are matched; the lists themselves
and the per-account rules are the store's (``store/spam_filing.py``), applied in the
delivery transaction.  This module says which names may match an *allow* list: only an
identity that authentication did not refute -- MAIL FROM unless SPF failed for it, the
``From:`` address unless DMARC failed for its domain (``authentication.Stamp``); without
a Stamp (``[authentication]`` off, or its checks broke) none: a name anybody can write
must not carry spam past the filter.  A block list matches both names as written.

When rspamd says ``reject`` or ``soft reject`` (``spam_scan.Refused``, the rare path) the
message is accepted if *any* local recipient's allow list lets the sender in: the
recipients whose lists do not get it as spam (Junk for those with SPAM Blocker on).

Standards: RFC 5321 §4.1.1.2 (MAIL FROM), RFC 5322 §3.6.2 (From), RFC 7208 (SPF),
RFC 7489 (DMARC identifier alignment).
Security: forged identities (SPF or DMARC fail) never match an allow list; the ``From:``
field counts only when the message has exactly one with one address.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

from twisted.internet import defer

from mailstack.store import spam_filing

HEAD_LIMIT = 64 * 1024      # octets of the message read for its From: field
_FROM = re.compile(rb"(?im)^from[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)")


def screening(request) -> spam_filing.Screening | None:
    """What delivery needs of the scan in ``request.spam`` (None: not scanned)."""
    result = request.spam
    if result is None:
        return None
    senders, trusted = identities(request)
    return spam_filing.Screening(result.header, result.spam, senders, trusted)


def identities(request) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the sender's addresses, those an allow list may match), lower-case."""
    envelope = (request.sender or "").lower()
    spool = request.message
    author = author_of(spool.head(HEAD_LIMIT)) if spool is not None else None
    senders = tuple(dict.fromkeys(a for a in (envelope, author) if a and "@" in a))
    stamp, trusted = request.authentication, []
    if stamp is not None:
        if envelope in senders and stamp.spf.result != "fail":
            trusted.append(envelope)
        if author in senders and stamp.dmarc.result != "fail":
            trusted.append(author)
    return senders, tuple(dict.fromkeys(trusted))


def author_of(head: bytes) -> str | None:
    """The one address of the message's one From: field, lower-case, or None."""
    end = head.find(b"\r\n\r\n")
    head = head[:end + 2] if end >= 0 else head
    values = [m.group(1).replace(b"\r\n", b"").decode("utf-8", "replace")
              for m in _FROM.finditer(head)]
    found = [a for _, a in getaddresses(values) if a]
    if len(values) != 1 or len(found) != 1 or "@" not in found[0]:
        return None
    return found[0].strip().lower()


def allowed(db, request) -> defer.Deferred:
    """Fires True when some local recipient's allow list lets this sender in."""
    account_ids = sorted({i for r in request.recipients for i in r.account_ids})
    screen = screening(request)
    if not account_ids or screen is None or not screen.trusted:
        return defer.succeed(False)
    return db.read(spam_filing.allowed_by_any, account_ids, screen)
