"""The learn queue of the Junk folder (issue 18, learning): what customers taught by
moving mail into \\Junk or out of it, until rspamd has learned it.

Why a queue in the database: a learn must survive rspamd being down and this process
being restarted, and be written exactly when the IMAP COPY or MOVE is -- the row goes in
the same transaction (``imap_store.copy_messages``), so it is durable when the client's OK
is sent, and it carries the message's body, so an EXPUNGE meanwhile loses nothing.  The
learner (``spam/learning.py``) claims rows with a lease, as the outbound queue does
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's single writer on SQLite), so several
processes sharing one database never learn a row twice.

Which moves teach (``direction``): into a folder whose special use is \\Junk (RFC 6154)
from one that is not -> spam; out of \\Junk into any folder but \\Trash -> ham (deleting
spam is no sign that it was ham; Dovecot's documented imapsieve antispam setup leaves Trash
out too).  APPEND is never learned (clients save drafts and copies there).

Uniqueness: one row per account, SHA-256 of the body and direction (``ON CONFLICT DO
NOTHING``, so two sessions moving the same message at once both succeed): moved into Junk
a second time, a message teaches nothing new.  Rows done keep their digest (not their
body) for ``[spam] learn_keep_days``, then ``purge`` removes them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mailstack.store.schema import folders, spam_learns

SPAM, HAM = "spam", "ham"
JUNK, TRASH = "\\Junk", "\\Trash"
PENDING, LEARNING = "pending", "learning"
LEARNED, REFUSED, TOO_LARGE, FAILED = "learned", "refused", "too_large", "failed"
DONE = (LEARNED, REFUSED, TOO_LARGE, FAILED)
_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def direction(source_use: str | None, target_use: str | None) -> str | None:
    """What a copy from a folder of ``source_use`` into one of ``target_use`` teaches."""
    if target_use == JUNK and source_use != JUNK:
        return SPAM
    if source_use == JUNK and target_use not in (JUNK, TRASH):
        return HAM
    return None


@dataclass(frozen=True)
class Recording:
    """Handed to ``imap_store.copy_messages`` when learning is on: the moment of the copy
    and the largest body kept for a learn."""

    at: datetime
    max_size: int


def record_copy(conn: Connection, account_id: int, source_folder_id: int, target_use,
                bodies, recording: Recording) -> int:
    """Queue the learns a copy of ``bodies`` from ``source_folder_id`` into a folder of
    special use ``target_use`` teaches; how many rows were new."""
    source_use = conn.execute(select(folders.c.special_use)
                              .where(folders.c.id == source_folder_id)).scalar()
    learn = direction(source_use, target_use)
    if learn is None:
        return 0
    return sum(record(conn, account_id, learn, body, recording) for body in bodies)


def record(conn: Connection, account_id: int, learn: str, body: bytes,
           recording: Recording) -> int:
    """One learn of ``body`` (1), or nothing when it was recorded before (0)."""
    body = bytes(body)
    kept = len(body) <= recording.max_size
    at = recording.at
    statement = _INSERT[conn.dialect.name](spam_learns).values(
        account_id=account_id, digest=hashlib.sha256(body).hexdigest(), direction=learn,
        body=body if kept else None, size=len(body), status=PENDING if kept else TOO_LARGE,
        attempts=0, next_attempt_at=at, last_error="" if kept else "too large to learn",
        created_at=at, updated_at=at)
    inserted = statement.on_conflict_do_nothing().returning(spam_learns.c.id)
    return int(conn.execute(inserted).first() is not None)


class Claimed(NamedTuple):
    id: int
    account_id: int
    direction: str
    body: bytes
    attempts: int            # this one included
    created_at: datetime


def claim_next(conn: Connection, now: datetime, lease_until: datetime) -> Claimed | None:
    """The next due learn, leased to the caller until ``lease_until``; None when none is
    due.  A lease that expired (its learner died) is taken over."""
    c = spam_learns.c
    due = or_(and_(c.status == PENDING, c.next_attempt_at <= now),
              and_(c.status == LEARNING, c.claimed_until < now))
    row = conn.execute(select(c.id, c.account_id, c.direction, c.body, c.attempts,
                              c.created_at).where(due).order_by(c.next_attempt_at, c.id)
                       .limit(1).with_for_update(skip_locked=True)).first()
    if row is None:
        return None
    conn.execute(update(spam_learns).where(c.id == row.id).values(
        status=LEARNING, claimed_until=lease_until, attempts=row.attempts + 1,
        updated_at=now))
    return Claimed(row.id, row.account_id, row.direction, bytes(row.body), row.attempts + 1,
                   row.created_at)


def finish(conn: Connection, row_id: int, now: datetime, status: str, note: str = "") -> None:
    """The learn is over (``LEARNED``, ``REFUSED`` or ``FAILED``): its body goes, its
    digest stays (so the message is not learned again)."""
    assert status in DONE
    conn.execute(update(spam_learns).where(spam_learns.c.id == row_id).values(
        status=status, body=None, claimed_until=None, last_error=note[:500], updated_at=now))


def retry(conn: Connection, row_id: int, now: datetime, error: str, at: datetime) -> None:
    """rspamd could not take it now: tried again at ``at``; the error kept for ``spam status``."""
    conn.execute(update(spam_learns).where(spam_learns.c.id == row_id).values(
        status=PENDING, claimed_until=None, next_attempt_at=at, last_error=error[:500],
        updated_at=now))


def purge(conn: Connection, before: datetime) -> int:
    """Forget the learns done before ``before``; how many."""
    c = spam_learns.c
    return conn.execute(delete(spam_learns).where(c.status.in_(DONE),
                                                   c.updated_at < before)).rowcount


def next_due(conn: Connection) -> datetime | None:
    """When the earliest waiting learn is due (for tests and ``spam status``)."""
    return conn.execute(select(func.min(spam_learns.c.next_attempt_at))
                        .where(spam_learns.c.status == PENDING)).scalar()


class Problem(NamedTuple):
    at: datetime
    direction: str
    status: str
    attempts: int
    error: str


def summary(conn: Connection, last: int = 5) -> tuple[dict, list[Problem]]:
    """({(status, direction): count}, the ``last`` newest rows that carry an error: a
    learn waiting for a retry, refused by rspamd, given up or too large)."""
    c = spam_learns.c
    counts = {(row.status, row.direction): row.n for row in conn.execute(
        select(c.status, c.direction, func.count().label("n")).group_by(c.status, c.direction))}
    problems = conn.execute(select(c.updated_at, c.direction, c.status, c.attempts,
                                   c.last_error).where(c.last_error != "", c.status != LEARNED)
                            .order_by(c.updated_at.desc(), c.id.desc()).limit(last)).all()
    return counts, [Problem(*row) for row in problems]
