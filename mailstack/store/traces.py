"""Protocol traces asked by ``mailstack trace`` (``traces``), shared by every node.

Why in the database: several nodes may share one PostgreSQL and the command runs as a
separate process; each node polls the active rows (``protocols/traces.py``) and traces the
matching connections itself.  A trace ends by itself when ``until`` passes (compared with
the injected clock's time, never the database's); ``stop`` ends it early by marking it
stopped, which every node obeys whatever its clock.  The row stays,
so ``mailstack trace --list`` still names a trace that ended, and tracing the same target
again reuses it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from mailstack import addresses
from mailstack.store.schema import traces as table

_SAFE = re.compile(r"[^A-Za-z0-9@._+-]")


@dataclass(frozen=True)
class Trace:
    target: str           # a normalised address, or an IP network ("192.0.2.7/32")
    started_at: datetime
    until: datetime
    stopped_at: datetime | None
    added_by: str
    reason: str

    def active(self, at: datetime) -> bool:
        return self.stopped_at is None and self.until > at


_COLUMNS = (table.c.target, table.c.started_at, table.c.until, table.c.stopped_at,
            table.c.added_by, table.c.reason)


def start(conn: Connection, target: str, at: datetime, until: datetime,
          added_by: str = "", reason: str = "") -> Trace:
    """Trace ``target`` from ``at`` until ``until``; a trace already running is extended
    (or shortened) to ``until`` and keeps its start."""
    row = conn.execute(select(table.c.id, table.c.until, table.c.started_at, table.c.stopped_at)
                       .where(table.c.target == target)).first()
    if row is None:
        conn.execute(insert(table).values(target=target, started_at=at, until=until,
                                          added_by=added_by, reason=reason))
    else:
        running = row.stopped_at is None and row.until > at
        conn.execute(update(table).where(table.c.id == row.id).values(
            started_at=row.started_at if running else at, until=until, stopped_at=None,
            added_by=added_by, reason=reason))
    return get(conn, target)


def get(conn: Connection, target: str) -> Trace | None:
    row = conn.execute(select(*_COLUMNS).where(table.c.target == target)).first()
    return None if row is None else Trace(*row)


def stop(conn: Connection, target: str, at: datetime) -> bool:
    """End the trace of ``target`` now, on every node whatever its clock says; False when
    none was running."""
    return conn.execute(update(table).where(
        table.c.target == target, table.c.until > at, table.c.stopped_at.is_(None))
        .values(stopped_at=at)).rowcount > 0


def active(conn: Connection, at: datetime) -> list[Trace]:
    """The traces running at ``at`` (what every node polls)."""
    return [Trace(*row) for row in conn.execute(
        select(*_COLUMNS).where(table.c.until > at, table.c.stopped_at.is_(None))
        .order_by(table.c.target))]


def listing(conn: Connection) -> list[Trace]:
    """Every trace asked, running or ended, newest first."""
    return [Trace(*row) for row in conn.execute(
        select(*_COLUMNS).order_by(table.c.started_at.desc(), table.c.target))]


def normalise_target(text: str) -> str:
    """An address as the realm spells it (lower case, ``addresses.normalise``), an IP
    address (an IPv4-mapped IPv6 one as IPv4), or a network (``2001:db8::/64``); raises
    ValueError naming what is wrong."""
    text = text.strip()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    else:
        address = network.network_address
        if network.num_addresses == 1:
            mapped = getattr(address, "ipv4_mapped", None)
            return str(mapped or address)
        return str(network)
    try:
        return addresses.normalise(text)
    except addresses.AddressError as e:
        raise ValueError(f"neither an address nor an IP: {e}") from None


def network_of(target: str):
    """The IP network of an IP target, or None for an address."""
    if "@" in target:
        return None
    return ipaddress.ip_network(target, strict=False)


def directory_name(target: str) -> str:
    """The directory under ``state_dir/traces`` that holds ``target``'s files: the target
    itself where it is made of safe characters, else with them replaced and a hash added
    so that two targets never share one (``/`` of a network, ``'`` of an address)."""
    safe = _SAFE.sub("_", target)
    if safe == target and not target.startswith("."):
        return target
    return f"{safe.lstrip('.')}-{hashlib.sha256(target.encode()).hexdigest()[:8]}"
