"""Whitelist entries: IPs, networks and verified hostname suffixes that skip the anti-spam
checks (never the relay check).

Why hostname suffixes only for verified names: anyone can publish a PTR record claiming
``mail.google.com``; only a forward-confirmed name proves it.  Each entry keeps its origin:
added by hand, or approved from a whitehole request (``request_ref``, with the date the
desk reviews it again: ``store/whitehole_requests.py``).
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
    request_ref: str | None = None      # the whitehole request it was approved from
    review_at: datetime | None = None

    @property
    def origin(self) -> str:
        return f"request {self.request_ref}" if self.request_ref else "manual"

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


def add(conn: Connection, text: str, reason: str, added_by: str, at: datetime, *,
        request_ref: str | None = None, review_at: datetime | None = None) -> Entry:
    entry, kind = parse_entry(text)
    if conn.execute(select(whitelist.c.id).where(whitelist.c.entry == entry)).first():
        raise Conflict(f"{entry} is already whitelisted")
    conn.execute(insert(whitelist).values(entry=entry, kind=kind, reason=reason[:255],
                                          added_by=added_by[:64], created_at=at,
                                          request_ref=request_ref, review_at=review_at))
    return Entry(entry, kind, reason[:255], added_by[:64], at, request_ref, review_at)


def all_entries(conn: Connection) -> list[Entry]:
    c = whitelist.c
    rows = conn.execute(select(c.entry, c.kind, c.reason, c.added_by, c.created_at,
                               c.request_ref, c.review_at).order_by(c.entry))
    return [Entry(*r) for r in rows]


def remove(conn: Connection, text: str) -> None:
    entry, _kind = parse_entry(text)
    if not conn.execute(delete(whitelist).where(whitelist.c.entry == entry)).rowcount:
        raise NotFound(f"{entry} is not whitelisted")
