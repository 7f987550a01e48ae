"""The rejection log: every refusal a policy check made, findable from what a customer says.

Why these columns: a customer calling the support desk knows the From, the To, roughly
when, the error text (or its ref) and sometimes their IP.  Each is indexed or cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from mailstack.store.schema import rejections


@dataclass(frozen=True)
class Rejection:
    ref: str
    at: datetime
    session: str
    port: str
    stage: str
    check_name: str
    client_ip: str
    ptr: str | None
    helo: str | None
    mail_from: str | None
    rcpt_to: str | None
    reply: str
    detail: str = ""        # the check's reason, for the desk: never sent to the client


_COLUMNS = tuple(getattr(rejections.c, f) for f in Rejection.__dataclass_fields__)


def record(conn: Connection, rejection: Rejection) -> None:
    values = dict(rejection.__dict__)
    for key, limit in (("ptr", 255), ("helo", 255), ("mail_from", 320), ("rcpt_to", 320)):
        if values[key] is not None:
            values[key] = values[key][:limit]
    conn.execute(insert(rejections).values(**values))


def count_since(conn: Connection, client_ip: str, check_name: str, since: datetime) -> int:
    c = rejections.c
    return int(conn.execute(select(func.count(c.id)).where(
        c.client_ip == client_ip, c.check_name == check_name, c.at >= since)).scalar())


def search(conn: Connection, *, sender: str | None = None, recipient: str | None = None,
           at: datetime | None = None, tolerance: timedelta = timedelta(hours=1),
           text: str | None = None, client_ip: str | None = None,
           limit: int = 50) -> list[Rejection]:
    """Rejections matching every fact given; ``text`` matches the ref or part of the reply."""
    c = rejections.c
    query = select(*_COLUMNS).order_by(c.at.desc(), c.id.desc()).limit(limit)
    if sender is not None:
        query = query.where(func.lower(c.mail_from) == sender.lower())
    if recipient is not None:
        query = query.where(func.lower(c.rcpt_to) == recipient.lower())
    if at is not None:
        query = query.where(c.at >= at - tolerance, c.at <= at + tolerance)
    if client_ip is not None:
        query = query.where(c.client_ip == client_ip)
    if text:
        needle = text.strip()
        query = query.where((c.ref == needle.upper()) | c.reply.contains(needle, autoescape=True))
    return [Rejection(*r) for r in conn.execute(query)]
