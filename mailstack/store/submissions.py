"""Submissions: one row per message a customer sent through us.

Why stored: the recipients-per-hour limit must hold across processes sharing the database,
and the migration reports ask who still sends through a POP-before-SMTP window or without
TLS, and when they last did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.engine import Connection

from mailstack.store.schema import submissions


@dataclass(frozen=True)
class Submission:
    at: datetime
    account_id: int | None
    username: str
    client_ip: str
    method: str
    tls: bool
    recipients: int
    queue_id: str
    helo: str | None = None
    user_agent: str | None = None
    port: int | None = None


# Built once: both run for every submitted message, and building a statement (its bind
# parameters and cache key) costs more than running it (issue 16).
_RECORD = insert(submissions)
_RECIPIENTS_SINCE = (select(func.coalesce(func.sum(submissions.c.recipients), 0))
                     .where(submissions.c.account_id == bindparam("account_id"),
                            submissions.c.at >= bindparam("since")))


def record(conn: Connection, entry: Submission) -> None:
    conn.execute(_RECORD, entry.__dict__)


def recipients_since(conn: Connection, account_id: int, since: datetime) -> int:
    return int(conn.execute(_RECIPIENTS_SINCE, {"account_id": account_id, "since": since})
               .scalar())


def by_method(conn: Connection, method: str, since: datetime | None = None,
              account_id: int | None = None) -> list[Submission]:
    c = submissions.c
    query = select(c.at, c.account_id, c.username, c.client_ip, c.method, c.tls, c.recipients,
                   c.queue_id, c.helo, c.user_agent, c.port).where(c.method == method).order_by(c.at, c.id)
    if since is not None:
        query = query.where(c.at >= since)
    if account_id is not None:
        query = query.where(c.account_id == account_id)
    return [Submission(*row) for row in conn.execute(query)]
