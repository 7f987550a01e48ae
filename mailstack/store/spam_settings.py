"""A customer's SPAM Blocker settings and sender lists (issue 18, item 2): what the CLI
(``mailstack account spam-blocker|spam-allow|spam-block``), ``account show`` and the
self-check page read and change.

Why its own module: the switches live on the account row and the lists in their own
table (``spam_senders``); delivery reads both in its transaction (``spam_filing.py``),
and everything that changes them goes through here, with one rule for what a pattern is:

- ``user@domain``: that address only;
- ``domain``: the domain and every subdomain of it (``example.com`` covers
  ``news.example.com``); at least two labels (``com`` alone is refused).

Patterns are kept lower-case (domains are case-insensitive, RFC 5321 §2.4; local parts
are compared case-insensitively too, as every provider does).  A pattern is on one list
at most: adding it to the other is a Conflict (remove it first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from mailstack.store.errors import Conflict, NotFound
from mailstack.store.schema import accounts, spam_senders

LISTS = ("allow", "block")
MAX_ENTRIES = 1000        # per account and list: a list is for people, not for a feed
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


@dataclass(frozen=True)
class Settings:
    blocker: bool
    tag_subject: bool


def pattern_of(text: str) -> str:
    """``text`` as a stored pattern (lower-case, checked); ValueError when it is none."""
    pattern = text.strip().lower().rstrip(".")
    local, at, domain = pattern.rpartition("@")
    if not _DOMAIN.match(domain) or len(pattern) > 320:
        raise ValueError(f"{text!r} is not an address or a domain name with a dot")
    if at and not _LOCAL.match(local):
        raise ValueError(f"{text!r} is not an address or a domain name with a dot")
    return pattern


def settings(conn: Connection, account_id: int) -> Settings:
    row = conn.execute(select(accounts.c.spam_blocker, accounts.c.spam_tag_subject)
                       .where(accounts.c.id == account_id)).first()
    if row is None:
        raise NotFound(f"no account {account_id}")
    return Settings(bool(row[0]), bool(row[1]))


def set_blocker(conn: Connection, account_id: int, on: bool,
                tag_subject: bool | None = None) -> Settings:
    """Switch SPAM Blocker; ``tag_subject`` None leaves the subject tag as it was."""
    values = {"spam_blocker": on}
    if tag_subject is not None:
        values["spam_tag_subject"] = tag_subject
    if not conn.execute(update(accounts).where(accounts.c.id == account_id)
                        .values(**values)).rowcount:
        raise NotFound(f"no account {account_id}")
    return settings(conn, account_id)


def entries(conn: Connection, account_id: int, kind: str) -> list[str]:
    c = spam_senders.c
    return [p for (p,) in conn.execute(select(c.pattern).where(
        c.account_id == account_id, c.kind == _kind(kind)).order_by(c.pattern))]


def add_entry(conn: Connection, account_id: int, kind: str, text: str) -> str:
    """Put a sender on the account's ``allow`` or ``block`` list; the stored pattern."""
    pattern, kind, c = pattern_of(text), _kind(kind), spam_senders.c
    on = conn.execute(select(c.kind).where(c.account_id == account_id,
                                           c.pattern == pattern)).scalar()
    if on is not None:
        raise Conflict(f"{pattern} is already on the {on} list")
    if len(entries(conn, account_id, kind)) >= MAX_ENTRIES:
        raise Conflict(f"the {kind} list is full ({MAX_ENTRIES} entries)")
    conn.execute(insert(spam_senders).values(account_id=account_id, kind=kind, pattern=pattern))
    return pattern


def remove_entry(conn: Connection, account_id: int, kind: str, text: str) -> str:
    pattern, c = pattern_of(text), spam_senders.c
    removed = conn.execute(delete(spam_senders).where(
        c.account_id == account_id, c.kind == _kind(kind), c.pattern == pattern)).rowcount
    if not removed:
        raise NotFound(f"{pattern} is not on the {kind} list")
    return pattern


def _kind(kind: str) -> str:
    if kind not in LISTS:
        raise ValueError(f"no list {kind!r}")
    return kind
