"""Where each local copy of a scanned port-25 message goes: INBOX or Junk, tagged or not
(issue 18, items 1, 2 and 4).

Why in the store: the choice depends on each recipient account's SPAM Blocker switches
and sender lists, and it is made inside the delivery transaction (``delivery.routing``),
with one statement for all the recipients (the accounts left-joined with the list
entries that could match), so a setting changed a moment ago applies and the single
COMMIT before the ``250`` covers it.  The same query answers the refusal check when rspamd
said ``reject`` (``policy/spam_lists.py``: the rare path).

The rules, per account (most specific list entry first: an address beats a domain, a
longer domain a shorter one; at the same rank ``block`` beats ``allow``):

- the sender on its **block** list: Junk, whatever rspamd said and even with SPAM Blocker
  off (the customer said so), ``[SPAM]``-tagged with its subject tag on;
- on its **allow** list: INBOX, never tagged (rspamd's verdict stays in X-Spam-Status);
- otherwise probable spam (``Screening.spam``) with SPAM Blocker on: Junk (tagged with
  the tag on); off: INBOX.

"The sender" is the envelope sender (MAIL FROM) and the address in ``From:``; an
identity that failed SPF (MAIL FROM) or DMARC (``From:``) does not match an allow list
(``Screening.trusted`` leaves it out: ``policy/spam_lists.py``), so forged mail from an
allowed name is not let in; it still matches a block list.

Standards: RFC 5321 §2.4 (domains compare case-insensitively).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, select
from sqlalchemy.engine import Connection

from mailstack.store.schema import accounts, spam_senders

ALLOWED, BLOCKED = "sender=allowed", "sender=blocked"


@dataclass(frozen=True)
class Screening:
    """What delivery needs of port 25's scan (built by ``policy/spam_lists.py``)."""

    header: bytes                     # our X-Spam-* fields (spam_scan.SpamResult.header)
    spam: bool = False                # rspamd's action says probable spam
    senders: tuple[str, ...] = ()     # MAIL FROM and From: addresses, lower-case
    trusted: tuple[str, ...] = ()     # those of them that may match an allow list


@dataclass(frozen=True)
class Filing:
    """One account's copy: its folder, the subject tag, a note in X-Spam-Status."""

    junk: bool = False
    tag: bool = False
    note: str = ""


PLAIN = Filing()

_MATCHES = (
    select(accounts.c.id, accounts.c.spam_blocker, accounts.c.spam_tag_subject,
           spam_senders.c.kind, spam_senders.c.pattern)
    .select_from(accounts.outerjoin(spam_senders, and_(
        spam_senders.c.account_id == accounts.c.id,
        spam_senders.c.pattern.in_(bindparam("patterns", expanding=True)))))
    .where(accounts.c.id.in_(bindparam("ids", expanding=True))))


def candidates(address: str) -> list[str]:
    """The patterns that match ``address``: itself, its domain and the domain's parents
    of two labels or more."""
    local, _, domain = address.lower().rpartition("@")
    labels = domain.split(".")
    parents = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    return ([address.lower()] if local else []) + parents


def choices(conn: Connection, account_ids, screening: Screening) -> dict[int, Filing]:
    """Each account's Filing for this message, in one statement."""
    patterns = sorted({p for s in screening.senders for p in candidates(s)})
    settings, matches = {}, {}
    for row in conn.execute(_MATCHES, {"ids": list(account_ids), "patterns": patterns}):
        settings[row.id] = (bool(row.spam_blocker), bool(row.spam_tag_subject))
        if row.kind is not None:
            matches.setdefault(row.id, []).append((row.kind, row.pattern))
    trusted = {p for s in screening.trusted for p in candidates(s)}
    return {i: choose(screening.spam, *settings[i], listed(matches.get(i, ()), trusted))
            for i in settings}


def listed(matches, trusted) -> str | None:
    """``allow``, ``block`` or None: the most specific entry that counts; an allow entry
    counts only when it matches a ``trusted`` identity's pattern."""
    best = None
    for kind, pattern in matches:
        if kind == "allow" and pattern not in trusted:
            continue
        rank = ("@" in pattern, pattern.count("."), kind == "block")
        if best is None or rank > best[0]:
            best = (rank, kind)
    return best[1] if best else None


def choose(spam: bool, blocker: bool, tag: bool, kind: str | None) -> Filing:
    if kind == "block":
        return Filing(junk=True, tag=tag, note=BLOCKED)
    if kind == "allow":
        return Filing(note=ALLOWED)
    if spam and blocker:
        return Filing(junk=True, tag=tag)
    return PLAIN


def allowed_by_any(conn: Connection, account_ids, screening: Screening) -> bool:
    """Whether some recipient's allow list lets this sender in (rspamd said reject)."""
    return any(f.note == ALLOWED for f in choices(conn, account_ids, screening).values())
