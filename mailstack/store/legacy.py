"""Who still depends on what is being retired: queries for the migration report.

Why from the records we already keep: every POP-before-SMTP relay is a ``submissions`` row
(method ``pop-before-smtp``) and every login says whether its password crossed under TLS,
so the report needs no extra bookkeeping on the hot path.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mailstack.store.schema import accounts, login_events, submissions


@dataclass
class Usage:
    address: str
    count: int = 0
    last_seen: datetime | None = None
    client_ips: set = field(default_factory=set)
    protocols: set = field(default_factory=set)
    weeks: set = field(default_factory=set)

    def add(self, at: datetime, ip: str, protocol: str) -> None:
        self.count += 1
        self.last_seen = max(self.last_seen or at, at)
        self.client_ips.add(ip)
        self.protocols.add(protocol)
        year, week, _ = at.isocalendar()
        self.weeks.add(f"{year}-W{week:02d}")


def window_relays(conn: Connection, since: datetime) -> dict[str, Usage]:
    """Accounts that sent through a POP-before-SMTP window since ``since``."""
    s = submissions.c
    rows = conn.execute(select(s.username, s.at, s.client_ip).where(
        s.method == "pop-before-smtp", s.at >= since))
    found: dict[str, Usage] = {}
    for username, at, ip in rows:
        found.setdefault(username, Usage(username)).add(at, ip, "smtp (POP-before-SMTP)")
    return found


def cleartext_logins(conn: Connection, since: datetime) -> dict[str, Usage]:
    """Accounts whose password crossed without TLS (successful logins) since ``since``."""
    e = login_events.c
    rows = conn.execute(select(e.username, e.at, e.client_ip, e.protocol).where(
        e.success.is_(True), e.tls.is_(False), e.at >= since))
    found: dict[str, Usage] = {}
    for username, at, ip, protocol in rows:
        found.setdefault(username, Usage(username)).add(at, ip, protocol)
    return found


def account_hashes(conn: Connection) -> list[tuple[str, str]]:
    return [tuple(r) for r in conn.execute(select(accounts.c.address, accounts.c.password_hash)
                                           .order_by(accounts.c.address))]


def weekly_accounts(usages: dict[str, Usage]) -> dict[str, int]:
    """Distinct accounts per ISO week: the trend the operator wants to see fall."""
    per_week = defaultdict(set)
    for usage in usages.values():
        for week in usage.weeks:
            per_week[week].add(usage.address)
    return {week: len(names) for week, names in sorted(per_week.items())}
