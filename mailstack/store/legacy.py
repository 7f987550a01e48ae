"""Who still depends on what is being retired: queries for the migration report.

Why from the records we already keep: every POP-before-SMTP relay is a ``submissions`` row
(method ``pop-before-smtp``) and every login says whether its password crossed under TLS,
so the report needs no extra bookkeeping on the hot path.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from mailstack.store import mailboxes
from mailstack.store.schema import accounts, legacy_notices, login_events, submissions


@dataclass
class Usage:
    address: str
    count: int = 0
    last_seen: datetime | None = None
    client_ips: set = field(default_factory=set)
    protocols: set = field(default_factory=set)
    weeks: set = field(default_factory=set)
    programs: set = field(default_factory=set)
    ports: set = field(default_factory=set)

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
    rows = conn.execute(select(s.username, s.at, s.client_ip, s.user_agent, s.helo, s.port).where(
        s.method == "pop-before-smtp", s.at >= since))
    found: dict[str, Usage] = {}
    for username, at, ip, agent, helo, port in rows:
        usage = found.setdefault(username, Usage(username))
        usage.add(at, ip, "smtp (POP-before-SMTP)")
        if port:
            usage.ports.add(port)
        if agent or helo:
            usage.programs.add(agent or f"EHLO {helo}")
    return found


def cleartext_logins(conn: Connection, since: datetime) -> dict[str, Usage]:
    """Accounts whose password crossed without TLS (successful logins) since ``since``."""
    e = login_events.c
    rows = conn.execute(select(e.username, e.at, e.client_ip, e.protocol, e.port, e.client_name)
                        .where(e.success.is_(True), e.tls.is_(False), e.at >= since))
    found: dict[str, Usage] = {}
    for username, at, ip, protocol, port, client_name in rows:
        usage = found.setdefault(username, Usage(username))
        usage.add(at, ip, protocol)
        if port:
            usage.ports.add(port)
        if client_name:
            usage.programs.add(client_name)
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


def notices_sent(conn: Connection, phase: str | None = None) -> dict[int, list[datetime]]:
    n = legacy_notices.c
    query = select(n.account_id, n.at).order_by(n.at)
    if phase is not None:
        query = query.where(n.phase == phase)
    found: dict[int, list[datetime]] = defaultdict(list)
    for account_id, at in conn.execute(query):
        found[account_id].append(at)
    return found


def deliver_notice(conn: Connection, account_id: int, phase: str, message: bytes, at: datetime,
                   *, again: bool) -> bool:
    """Put one notice into the INBOX and record it; False if one was sent and not ``again``."""
    n = legacy_notices.c
    if not again and conn.execute(select(n.id).where(n.account_id == account_id,
                                                     n.phase == phase)).first():
        return False
    mailboxes.deliver(conn, [account_id], message, at)
    conn.execute(insert(legacy_notices).values(account_id=account_id, phase=phase, at=at))
    return True


def account_ids(conn: Connection, addresses_) -> dict[str, int]:
    rows = conn.execute(select(accounts.c.address, accounts.c.id)
                        .where(accounts.c.address.in_(list(addresses_))))
    return {address: account_id for address, account_id in rows}


def deliver_daily_notice(conn: Connection, account_id: int, kind: str, message: bytes,
                         at: datetime) -> bool:
    """At most one ``kind`` notice per account per UTC day."""
    n = legacy_notices.c
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if conn.execute(select(n.id).where(n.account_id == account_id, n.phase == kind,
                                       n.at >= day)).first():
        return False
    mailboxes.deliver(conn, [account_id], message, at)
    conn.execute(insert(legacy_notices).values(account_id=account_id, phase=kind, at=at))
    return True
