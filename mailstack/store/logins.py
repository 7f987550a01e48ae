"""Login events: every authentication attempt, successful or not.

Why stored: the POP-before-SMTP window ("did anyone log in from this IP in the last ten
minutes?") and the migration reports ("who still sends passwords in the clear?") are both
queries over this table, and a window opened by one process must be seen by another that
shares the database.  Indexed by (client_ip, at) and (account_id, at).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from mailstack.store.schema import login_events


@dataclass(frozen=True)
class LoginEvent:
    at: datetime
    username: str
    protocol: str
    client_ip: str
    tls: bool
    mechanism: str
    success: bool
    account_id: int | None = None
    reason: str = ""
    client_name: str | None = None
    port: int | None = None


_RECORD = insert(login_events)     # built once: building it cost more than running it


def record(conn: Connection, event: LoginEvent) -> None:
    conn.execute(_RECORD, event.__dict__)


def name_client(conn: Connection, account_id: int, client_ip: str, protocol: str,
                client_name: str, since: datetime) -> bool:
    """Put the client's name (IMAP ID, sent after login) on this session's login event."""
    e = login_events.c
    newest = conn.execute(select(e.id).where(
        e.account_id == account_id, e.client_ip == client_ip, e.protocol == protocol,
        e.success.is_(True), e.at >= since).order_by(e.at.desc(), e.id.desc()).limit(1)).scalar()
    if newest is None:
        return False
    conn.execute(update(login_events).where(e.id == newest).values(client_name=client_name))
    return True


def recent(conn: Connection, *, client_ip: str | None = None, account_id: int | None = None,
           since: datetime | None = None, success: bool | None = None,
           limit: int = 100) -> list[LoginEvent]:
    c = login_events.c
    query = select(c.at, c.username, c.protocol, c.client_ip, c.tls, c.mechanism, c.success,
                   c.account_id, c.reason, c.client_name, c.port).order_by(c.at.desc(), c.id.desc())
    if client_ip is not None:
        query = query.where(c.client_ip == client_ip)
    if account_id is not None:
        query = query.where(c.account_id == account_id)
    if since is not None:
        query = query.where(c.at >= since)
    if success is not None:
        query = query.where(c.success == success)
    return [LoginEvent(*row) for row in conn.execute(query.limit(limit))]


def last_success_from(conn: Connection, client_ip: str, since: datetime,
                      protocols) -> LoginEvent | None:
    """The newest successful login from ``client_ip`` at or after ``since`` (the window)."""
    c = login_events.c
    row = conn.execute(
        select(c.at, c.username, c.protocol, c.client_ip, c.tls, c.mechanism, c.success,
               c.account_id, c.reason, c.client_name, c.port)
        .where(c.client_ip == client_ip, c.at >= since, c.success.is_(True),
               c.protocol.in_(list(protocols)), c.account_id.is_not(None))
        .order_by(c.at.desc(), c.id.desc()).limit(1)).first()
    return LoginEvent(*row) if row else None
