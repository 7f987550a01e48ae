"""Whitelist entries: IPs, networks and verified hostname suffixes that skip the anti-spam
checks (never the relay check).

Why hostname suffixes only for verified names: anyone can publish a PTR record claiming
``mail.google.com``; only a forward-confirmed name proves it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from mailstack.store.errors import Conflict, NotFound
from mailstack.store.schema import whitelist


@dataclass(frozen=True)
class Entry:
    entry: str
    kind: str
    reason: str
    added_by: str
    created_at: datetime

    def matches(self, ip: str, verified_name: str | None) -> bool:
        if self.kind == "host":
            return bool(verified_name) and ("." + verified_name).endswith(self.entry)
        return ipaddress.ip_address(ip) in ipaddress.ip_network(self.entry)


def parse_entry(text: str) -> tuple[str, str]:
    """(canonical entry, kind) for ``192.0.2.7``, ``192.0.2.0/24`` or ``.example.com``."""
    text = text.strip().lower()
    try:
        network = ipaddress.ip_network(text, strict=False)
        kind = "ip" if network.num_addresses == 1 else "cidr"
        return network.with_prefixlen, kind
    except ValueError:
        pass
    name = text.rstrip(".")
    if not name.strip(".") or " " in name or "/" in name:
        raise ValueError(f"{text!r} is not an IP, a network or a hostname suffix")
    return ("." + name.lstrip(".")), "host"


def add(conn: Connection, text: str, reason: str, added_by: str, at: datetime) -> Entry:
    entry, kind = parse_entry(text)
    if conn.execute(select(whitelist.c.id).where(whitelist.c.entry == entry)).first():
        raise Conflict(f"{entry} is already whitelisted")
    conn.execute(insert(whitelist).values(entry=entry, kind=kind, reason=reason[:255],
                                          added_by=added_by[:64], created_at=at))
    return Entry(entry, kind, reason, added_by, at)


def all_entries(conn: Connection) -> list[Entry]:
    rows = conn.execute(select(whitelist.c.entry, whitelist.c.kind, whitelist.c.reason,
                               whitelist.c.added_by, whitelist.c.created_at)
                        .order_by(whitelist.c.entry))
    return [Entry(*r) for r in rows]


def remove(conn: Connection, text: str) -> None:
    entry, _kind = parse_entry(text)
    if not conn.execute(delete(whitelist).where(whitelist.c.entry == entry)).rowcount:
        raise NotFound(f"{entry} is not whitelisted")
