"""The local copies of a scanned port-25 message, each where its account wants it
(issue 18): INBOX or Junk, with ``[SPAM] `` in front of the Subject for accounts that
asked for the tag, and a note in X-Spam-Status when a customer's own list decided.

Why here: ``store/spam_filing.py`` decides per account inside the delivery transaction;
this builds the copies.  The common case -- every account gets the message as prepared --
stores the one body analysed before the writer lock; only a copy that differs (tagged or
noted: the rare path of spam and listed senders) is built and analysed again, once per
variant however many accounts share it.  The settings are read only when the RCPT route
said they may matter (``worth_asking``): clean mail to customers without sender lists,
the common case, costs no statement more than before.

Standards: RFC 5322 §3.6.5 (Subject), §2.2.3 (a field with an empty value is allowed).
Security: only our own X-Spam-Status line (found by its exact octets, in front of the
message) and the message's first Subject field in its header section are changed; the
body is never touched.
"""

from __future__ import annotations

import re

from mailstack.store import mailboxes, spam_filing

TAG = b"[SPAM]"
_SUBJECT = re.compile(rb"(?im)^subject[ \t]*:[ \t]*")


def deliver(conn, account_ids, prepared, at, *, junk: bool = False, screening=None):
    """Store a copy for each account (``mailboxes.deliver``): ``prepared`` is (body,
    facts) of the common copy; ``junk``: all to Junk (a DMARC quarantine); ``screening``
    (``spam_filing.Screening``, port 25's scan) lets each account choose."""
    body, facts = prepared
    if screening is None:
        return mailboxes.deliver(conn, account_ids, body, at, facts, junk=junk)
    filings = spam_filing.choices(conn, account_ids, screening)
    groups = {}
    for account_id in account_ids:
        groups.setdefault(filings.get(account_id, spam_filing.PLAIN), []).append(account_id)
    stored, whole = [], None
    for filing, ids in groups.items():
        copy, copy_facts = body, facts
        if filing.tag or filing.note:
            whole = whole if whole is not None else _octets(body)
            copy, copy_facts = variant(whole, screening.header, filing), None
        stored += mailboxes.deliver(conn, ids, copy, at, copy_facts, junk=junk or filing.junk)
    return stored


def worth_asking(screening, accepted):
    """``screening``, or None when no recipient's settings can change a copy: clean mail
    to accounts without sender lists, spam to accounts that have neither SPAM Blocker on
    nor lists (as the RCPT route read them: ``Accepted.spam_blocker``/``spam_lists``).
    The common case then costs no statement; otherwise ``spam_filing`` reads the
    settings again, in the delivery's transaction."""
    if screening is None:
        return None
    listed = any(getattr(r, "spam_lists", ()) for r in accepted)
    blocking = screening.spam and any(getattr(r, "spam_blocker", ()) for r in accepted)
    return screening if listed or blocking else None


def variant(whole: bytes, header: bytes, filing) -> bytes:
    """``whole`` (our fields, then the message) with ``filing``'s note in our
    X-Spam-Status and its subject tag."""
    at = whole.find(header) if header else -1
    if at < 0:                     # no fields of ours: nothing to note, the message starts
        before, ours, message = b"", b"", whole
    else:
        before, ours, message = whole[:at], header, whole[at + len(header):]
    if filing.note and ours:
        first, _, rest = ours.partition(b"\r\n")
        ours = first + b" " + filing.note.encode("ascii") + b"\r\n" + rest
    return before + ours + (tagged(message) if filing.tag else message)


def tagged(message: bytes) -> bytes:
    """``message`` with ``[SPAM] `` in front of its Subject (added when it has none;
    unchanged when it already starts with the tag)."""
    end = message.find(b"\r\n\r\n")
    head = message[:end + 2] if end >= 0 else message
    found = _SUBJECT.search(head)
    if found is None:
        return b"Subject: " + TAG + b"\r\n" + message
    if head[found.end():].startswith(TAG):
        return message
    return message[:found.end()] + TAG + b" " + message[found.end():]


def _octets(body) -> bytes:
    """The common copy as bytes (a large one on SQLite is still its spool)."""
    return body if isinstance(body, (bytes, bytearray)) else body.read()
