"""DKIM signing keys (``dkim_keys``): one row per domain and selector, with its schedule.

Why in the database and not a key directory: every node sharing one PostgreSQL signs with
the same keys, a rotation made by ``mailstack dkim rotate`` reaches them all without
copying files, and the keys are in the backups with the mailboxes (docs/architecture.md).
Times are the injected clock's (``published_at``, ``signs_from``, ``retires_at``); which
keys are published or sign at a moment is ``dkim/schedule.py``'s to say.

Security: ``private_key`` is read by ``signing_keys`` alone (for the signer); ``listing``
leaves it out, so the admin commands cannot print it by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Connection

from mailstack.store.errors import Conflict
from mailstack.store.schema import dkim_keys as table


@dataclass(frozen=True)
class DkimKey:
    """A key as listed: everything but the private key."""

    id: int
    domain: str
    selector: str
    algorithm: str
    public_key: str
    created_at: datetime
    published_at: datetime
    signs_from: datetime
    retires_at: datetime | None


@dataclass(frozen=True, repr=False)
class SigningKey:
    """A key the signer holds: its schedule and the private key (never in a repr)."""

    domain: str
    selector: str
    algorithm: str
    private_key: str
    signs_from: datetime
    retires_at: datetime | None

    def __repr__(self) -> str:
        return f"SigningKey({self.domain}, {self.selector}, {self.algorithm})"


_LISTED = (table.c.id, table.c.domain, table.c.selector, table.c.algorithm, table.c.public_key,
           table.c.created_at, table.c.published_at, table.c.signs_from, table.c.retires_at)


def add(conn: Connection, domain: str, selector: str, algorithm: str, private_key: str,
        public_key: str, at: datetime, signs_from: datetime) -> None:
    """A new key, published from ``at``; Conflict when the selector is taken."""
    if selector in selectors(conn, domain):
        raise Conflict(f"{domain} already has a key with selector {selector}")
    conn.execute(insert(table).values(
        domain=domain, selector=selector, algorithm=algorithm, private_key=private_key,
        public_key=public_key, created_at=at, published_at=at, signs_from=signs_from))


def selectors(conn: Connection, domain: str) -> set[str]:
    return set(conn.execute(select(table.c.selector).where(table.c.domain == domain)).scalars())


def listing(conn: Connection, domain: str | None = None) -> list[DkimKey]:
    query = select(*_LISTED).order_by(table.c.domain, table.c.signs_from, table.c.algorithm)
    if domain is not None:
        query = query.where(table.c.domain == domain)
    return [DkimKey(*row) for row in conn.execute(query)]


def retire(conn: Connection, ids, at: datetime) -> int:
    """The keys ``ids`` stop signing at ``at`` (those already retiring earlier keep it)."""
    c = table.c
    return conn.execute(update(table).where(
        c.id.in_(list(ids)), or_(c.retires_at.is_(None), c.retires_at > at))
        .values(retires_at=at)).rowcount


def signing_keys(conn: Connection, now: datetime) -> list[SigningKey]:
    """Every key that signs now or will (not yet retired): what the signer caches."""
    c = table.c
    rows = conn.execute(select(c.domain, c.selector, c.algorithm, c.private_key, c.signs_from,
                               c.retires_at)
                        .where(or_(c.retires_at.is_(None), c.retires_at > now))
                        .order_by(c.domain, c.algorithm, c.signs_from))
    return [SigningKey(*row) for row in rows]
