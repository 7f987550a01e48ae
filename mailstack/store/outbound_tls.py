"""What the queue keeps about other domains' TLS: their cached MTA-STS policies and the
sessions counted for TLS-RPT.

Why in the database: a policy fetched once must be enforced by every node and after a
restart until its max_age passes (RFC 8461 §5.1: a failed fetch falls back on the cached
policy, so a cache lost at a restart would let an attacker who blocks the fetch downgrade
delivery); the counts must survive until the day's report is sent (RFC 8460 §4).

A session is counted in the transaction that records the delivery's outcome
(``delivery/outbound.py``), by an upsert that adds to the day's row: INSERT ... ON CONFLICT
DO UPDATE on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mailstack.store.schema import mta_sts_policies as policies, tls_results as results


@dataclass(frozen=True)
class CachedPolicy:
    domain: str
    policy_id: str
    mode: str
    mx: tuple[str, ...]
    max_age: int
    text: str
    fetched_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Session:
    """One outbound TLS session's result for TLS-RPT (``result_type`` "" = success)."""

    domain: str
    policy_type: str
    policy_id: str
    result_type: str = ""
    mx_host: str = ""
    remote_ip: str = ""


@dataclass(frozen=True)
class Counted:
    policy_type: str
    policy_id: str
    result_type: str
    mx_host: str
    remote_ip: str
    sessions: int


def cached_policy(conn: Connection, domain: str) -> CachedPolicy | None:
    p = policies.c
    row = conn.execute(select(p.domain, p.policy_id, p.mode, p.mx, p.max_age, p.policy_text,
                              p.fetched_at, p.expires_at).where(p.domain == domain)).first()
    if row is None:
        return None
    return CachedPolicy(row.domain, row.policy_id, row.mode, tuple(row.mx.split()),
                        row.max_age, row.policy_text, row.fetched_at, row.expires_at)


def save_policy(conn: Connection, policy: CachedPolicy) -> None:
    """The domain's policy replaced by a newly fetched one."""
    conn.execute(delete(policies).where(policies.c.domain == policy.domain))
    conn.execute(insert(policies).values(
        domain=policy.domain, policy_id=policy.policy_id, mode=policy.mode,
        mx=" ".join(policy.mx), max_age=policy.max_age, policy_text=policy.text,
        fetched_at=policy.fetched_at, expires_at=policy.expires_at))


def _add_sessions(dialect):
    add = dialect.insert(results)
    return add.on_conflict_do_update(
        index_elements=["domain", "day", "policy_type", "policy_id", "result_type", "mx_host",
                        "remote_ip"],
        set_={"sessions": results.c.sessions + add.excluded.sessions})


_ADD = {"sqlite": _add_sessions(sqlite), "postgresql": _add_sessions(postgresql)}


def count(conn: Connection, day: str, sessions) -> None:
    """Add ``sessions`` (``Session`` values) to ``day``'s counts."""
    totals: dict[Session, int] = {}
    for s in sessions:
        totals[s] = totals.get(s, 0) + 1
    if totals:
        conn.execute(_ADD[conn.dialect.name], [
            dict(domain=s.domain, day=day, policy_type=s.policy_type, policy_id=s.policy_id,
                 result_type=s.result_type, mx_host=s.mx_host[:255], remote_ip=s.remote_ip,
                 sessions=n) for s, n in totals.items()])


def days_before(conn: Connection, day: str) -> list[tuple[str, str]]:
    """(domain, day) of every counted day before ``day``: the reports that are due."""
    r = results.c
    return [tuple(row) for row in conn.execute(
        select(r.domain, r.day).where(r.day < day).distinct().order_by(r.day, r.domain))]


def counted(conn: Connection, domain: str, day: str) -> list[Counted]:
    r = results.c
    return [Counted(*row) for row in conn.execute(
        select(r.policy_type, r.policy_id, r.result_type, r.mx_host, r.remote_ip, r.sessions)
        .where(r.domain == domain, r.day == day)
        .order_by(r.policy_type, r.policy_id, r.result_type, r.mx_host, r.remote_ip))]


def forget(conn: Connection, domain: str, day: str) -> int:
    """The day's counts deleted; how many rows (0: another node reported them first)."""
    return conn.execute(delete(results).where(results.c.domain == domain,
                                              results.c.day == day)).rowcount
