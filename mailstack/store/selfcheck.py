"""Read-only queries behind the "is my mail program set up right?" page.

Why its own module: the page asks one account's recent mail-program activity -- successful
logins on the mail protocols (not the page's own HTTP login) and the messages it sent --
in one read transaction, newest first and bounded, so a busy account cannot make the page
slow.  Both queries are range scans on the (account_id, at) indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mailstack.store.logins import LoginEvent
from mailstack.store import spam_settings
from mailstack.store.schema import accounts, login_events, submissions
from mailstack.store.submissions import Submission

MAIL_PROTOCOLS = ("pop3", "imap", "smtp")


@dataclass(frozen=True)
class Activity:
    logins: list[LoginEvent]
    sends: list[Submission]


def recent_logins(conn: Connection, account_id: int, since: datetime,
                  limit: int) -> list[LoginEvent]:
    c = login_events.c
    query = (select(c.at, c.username, c.protocol, c.client_ip, c.tls, c.mechanism, c.success,
                    c.account_id, c.reason, c.client_name)
             .where(c.account_id == account_id, c.at >= since, c.success.is_(True),
                    c.protocol.in_(MAIL_PROTOCOLS))
             .order_by(c.at.desc(), c.id.desc()).limit(limit))
    return [LoginEvent(*row) for row in conn.execute(query)]


def recent_sends(conn: Connection, account_id: int, since: datetime,
                 limit: int) -> list[Submission]:
    c = submissions.c
    query = (select(c.at, c.account_id, c.username, c.client_ip, c.method, c.tls,
                    c.recipients, c.queue_id, c.helo, c.user_agent)
             .where(c.account_id == account_id, c.at >= since)
             .order_by(c.at.desc(), c.id.desc()).limit(limit))
    return [Submission(*row) for row in conn.execute(query)]


def recent_activity(conn: Connection, account_id: int, since: datetime,
                    limit: int = 50) -> Activity:
    """One account's logins and sends at or after ``since``, newest first."""
    return Activity(recent_logins(conn, account_id, since, limit),
                    recent_sends(conn, account_id, since, limit))


def spam_form(conn: Connection, account_id: int) -> tuple[spam_settings.Settings, str]:
    """The page's SPAM Blocker settings and the password hash its form token is keyed
    with (``protocols/selfcheck_spam.py``)."""
    row = conn.execute(select(accounts.c.password_hash).where(accounts.c.id == account_id)).first()
    return spam_settings.settings(conn, account_id), row[0] if row else ""
