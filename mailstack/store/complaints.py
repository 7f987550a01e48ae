"""Complaints against a sending IP: from the abuse desk's CLI or from spam users forward."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from mailstack.store.schema import complaints


@dataclass(frozen=True)
class Complaint:
    ip: str
    at: datetime
    source: str
    reason: str
    evidence: str


def add(conn: Connection, complaint: Complaint) -> int:
    conn.execute(insert(complaints).values(**complaint.__dict__))
    return count_since(conn, complaint.ip, None)


def count_since(conn: Connection, ip: str, since: datetime | None) -> int:
    query = select(func.count(complaints.c.id)).where(complaints.c.ip == ip)
    if since is not None:
        query = query.where(complaints.c.at >= since)
    return int(conn.execute(query).scalar())


def for_ip(conn: Connection, ip: str, limit: int = 20) -> list[Complaint]:
    c = complaints.c
    rows = conn.execute(select(c.ip, c.at, c.source, c.reason, c.evidence)
                        .where(c.ip == ip).order_by(c.at.desc()).limit(limit))
    return [Complaint(*r) for r in rows]
