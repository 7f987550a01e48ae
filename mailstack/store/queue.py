"""The outbound queue: durable before the 250, claimed safely by any number of runners.

Why per-recipient rows: one message to five domains is five deliveries with their own
retries and outcomes.  A runner *claims* due rows with a lease (``claimed_until``); a
runner that dies leaves a lease that expires and the rows are taken over.  On PostgreSQL
the claim skips rows another runner has locked (``FOR UPDATE SKIP LOCKED``); SQLite's
single writer (BEGIN IMMEDIATE) serialises claims by itself.

The operator's controls (``postsuper``'s): a *held* recipient (``hold``) is never claimed
until ``release``; a hold taken while a runner is delivering it lets that attempt finish
(its outcome is recorded; a retry stays held), and a release of such a row gives it back
to the runner that holds the lease, so no recipient is sent twice.  ``requeue`` makes
waiting recipients due now, attempts kept; ``drop`` deletes recipients (a message, a
destination domain, or everything) without a bounce.

Bodies are large and mostly not needed: the runner reads a message's envelope first
(``waiting``), the body only once it has a host to send it to (``body``), and for a bounce
only the start of the header (``header_start``); the driver's buffers for a large body do
not outlive the transaction (blobs.py, db.large_body).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from mailstack.store import blobs
from mailstack.store.db import large_body
from mailstack.store.errors import NotFound
from mailstack.store.schema import outbound_messages as messages, outbound_recipients as rcpts

QUEUED, DELIVERING, DELIVERED, BOUNCED = "queued", "delivering", "delivered", "bounced"
HELD = "held"                          # the operator's hold: never claimed until released
OPEN = (QUEUED, DELIVERING, HELD)      # not yet final: the message body is still needed
HEADER_START = 64 * 1024     # octets of a queued message a bounce quotes from at most


@dataclass(frozen=True)
class Due:
    id: int
    message_id: int
    recipient: str
    domain: str
    attempts: int


@dataclass(frozen=True)
class Queued:
    sender: str
    body: bytes
    created_at: datetime
    queue_id: str


@dataclass(frozen=True)
class Waiting:
    """A queued message without its body: what a delivery attempt needs first."""

    sender: str
    created_at: datetime
    queue_id: str


@dataclass(frozen=True)
class Row:
    queue_id: str
    sender: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_reply: str
    created_at: datetime


def enqueue(conn: Connection, sender: str, recipients, body, at: datetime, *,
            account_id=None, client_ip=None, queue_id=None) -> int:
    """Queue ``body`` (bytes, or a SpooledMessage written from its spool) for each
    recipient; the message's id."""
    message_id = blobs.insert_with_body(conn, messages, dict(
        queue_id=queue_id or "", sender=sender or "", created_at=at,
        account_id=account_id, client_ip=client_ip), body)
    for recipient in dict.fromkeys(recipients):
        conn.execute(insert(rcpts).values(
            message_id=message_id, recipient=recipient, domain=recipient.rpartition("@")[2],
            status=QUEUED, attempts=0, next_attempt_at=at, last_reply="", updated_at=at))
    return message_id


def claim_due(conn: Connection, now: datetime, lease_until: datetime, limit: int) -> list[Due]:
    c = rcpts.c
    due = or_(and_(c.status == QUEUED, c.next_attempt_at <= now),
              and_(c.status == DELIVERING, c.claimed_until < now))
    rows = conn.execute(select(c.id, c.message_id, c.recipient, c.domain, c.attempts)
                        .where(due).order_by(c.next_attempt_at, c.id).limit(limit)
                        .with_for_update(skip_locked=True)).all()
    if rows:
        conn.execute(update(rcpts).where(c.id.in_([r.id for r in rows]))
                     .values(status=DELIVERING, claimed_until=lease_until, updated_at=now))
    return [Due(*r) for r in rows]


def message(conn: Connection, message_id: int) -> Queued | None:
    row = conn.execute(select(messages.c.sender, messages.c.body, messages.c.created_at,
                              messages.c.queue_id).where(messages.c.id == message_id)).first()
    if row is None:
        return None
    large_body(conn, len(row.body))
    return Queued(row.sender, bytes(row.body), row.created_at, row.queue_id)


def waiting(conn: Connection, message_id: int) -> Waiting | None:
    row = conn.execute(select(messages.c.sender, messages.c.created_at, messages.c.queue_id)
                       .where(messages.c.id == message_id)).first()
    return Waiting(row.sender, row.created_at, row.queue_id) if row else None


def body(conn: Connection, message_id: int) -> bytes | None:
    found = conn.execute(select(messages.c.body).where(messages.c.id == message_id)).scalar()
    if found is None:
        return None
    large_body(conn, len(found))
    return bytes(found)


def header_start(conn: Connection, message_id: int) -> bytes:
    """The first HEADER_START octets of a queued message (a bounce quotes its header)."""
    found = conn.execute(select(func.substr(messages.c.body, 1, HEADER_START))
                         .where(messages.c.id == message_id)).scalar()
    return bytes(found) if found is not None else b""


def _finish(conn: Connection, rid: int, status: str, reply: str, at: datetime, **extra) -> None:
    conn.execute(update(rcpts).where(rcpts.c.id == rid).values(
        status=status, last_reply=reply[:1000], updated_at=at, claimed_until=None, **extra))


def delivered(conn: Connection, rid: int, reply: str, at: datetime) -> None:
    _finish(conn, rid, DELIVERED, reply, at, attempts=rcpts.c.attempts + 1)
    _forget_finished(conn, rid)


def retry(conn: Connection, rid: int, reply: str, at: datetime, next_at: datetime) -> None:
    """Waiting again; a recipient the operator held during this attempt stays held."""
    status = case((rcpts.c.status == HELD, HELD), else_=QUEUED)
    _finish(conn, rid, status, reply, at, attempts=rcpts.c.attempts + 1, next_attempt_at=next_at)


def bounced(conn: Connection, rid: int, reply: str, at: datetime) -> None:
    _finish(conn, rid, BOUNCED, reply, at, attempts=rcpts.c.attempts + 1)
    _forget_finished(conn, rid)


def _forget_finished(conn: Connection, rid: int) -> None:
    """Once every recipient of a message is final, its body is no longer needed."""
    message_id = conn.execute(select(rcpts.c.message_id).where(rcpts.c.id == rid)).scalar()
    open_ = conn.execute(select(func.count(rcpts.c.id)).where(
        rcpts.c.message_id == message_id, rcpts.c.status.in_(OPEN))).scalar()
    if not open_:
        conn.execute(delete(rcpts).where(rcpts.c.message_id == message_id))
        conn.execute(delete(messages).where(messages.c.id == message_id))


def listing(conn: Connection, queue_id: str | None = None) -> list[Row]:
    query = (select(messages.c.queue_id, messages.c.sender, rcpts.c.recipient, rcpts.c.status,
                    rcpts.c.attempts, rcpts.c.next_attempt_at, rcpts.c.last_reply,
                    messages.c.created_at)
             .select_from(rcpts.join(messages)).order_by(messages.c.created_at, rcpts.c.id))
    if queue_id is not None:
        query = query.where(messages.c.queue_id == queue_id)
    return [Row(*r) for r in conn.execute(query)]


def flush(conn: Connection, now: datetime) -> int:
    return conn.execute(update(rcpts).where(rcpts.c.status == QUEUED)
                        .values(next_attempt_at=now)).rowcount


# --- the operator's controls (``mailstack queue …``) ------------------------------------------

def _selected(conn: Connection, queue_id: str | None, domain: str | None) -> list:
    """WHERE clauses for the recipients of ``queue_id`` (None: every message) at ``domain``
    (None: every domain); NotFound for a queue id that is not in the queue."""
    where = []
    if queue_id is not None:
        ids = select(messages.c.id).where(messages.c.queue_id == queue_id)
        if conn.execute(ids.limit(1)).first() is None:
            raise NotFound(f"no queued message {queue_id}")
        where.append(rcpts.c.message_id.in_(ids))
    if domain is not None:
        where.append(rcpts.c.domain == domain)
    return where


def hold(conn: Connection, now: datetime, queue_id: str | None = None,
         domain: str | None = None) -> int:
    """Put waiting (and in-flight) recipients on hold; how many."""
    return conn.execute(update(rcpts).where(
        rcpts.c.status.in_([QUEUED, DELIVERING]), *_selected(conn, queue_id, domain))
        .values(status=HELD, updated_at=now)).rowcount


def release(conn: Connection, now: datetime, queue_id: str | None = None,
            domain: str | None = None) -> int:
    """Held recipients back in the queue on their retry schedule (``requeue`` for now)."""
    in_flight = rcpts.c.claimed_until > now            # a runner still holds the lease
    return conn.execute(update(rcpts).where(
        rcpts.c.status == HELD, *_selected(conn, queue_id, domain))
        .values(status=case((in_flight, DELIVERING), else_=QUEUED), updated_at=now)).rowcount


def requeue(conn: Connection, now: datetime, queue_id: str | None = None,
            domain: str | None = None) -> int:
    """Waiting recipients (and those of a runner whose lease expired) due now, attempts
    kept; held ones stay held and those being delivered are left to their runner."""
    waiting_ = or_(rcpts.c.status == QUEUED,
                   and_(rcpts.c.status == DELIVERING, rcpts.c.claimed_until < now))
    return conn.execute(update(rcpts).where(waiting_, *_selected(conn, queue_id, domain))
                        .values(status=QUEUED, next_attempt_at=now, claimed_until=None,
                                updated_at=now)).rowcount


def drop(conn: Connection, queue_id: str | None = None, domain: str | None = None) -> int:
    """Delete the selected recipients that are not final (no bounce is sent), and every
    message left with none; how many recipients."""
    where = [rcpts.c.status.in_(OPEN), *_selected(conn, queue_id, domain)]
    touched = list(conn.execute(select(rcpts.c.message_id).where(*where).distinct()).scalars())
    removed = conn.execute(delete(rcpts).where(*where)).rowcount
    for start in range(0, len(touched), 500):
        chunk = touched[start:start + 500]
        still_open = select(rcpts.c.message_id).where(rcpts.c.status.in_(OPEN))
        done = select(messages.c.id).where(messages.c.id.in_(chunk),
                                           messages.c.id.not_in(still_open))
        gone = list(conn.execute(done).scalars())
        if gone:
            conn.execute(delete(rcpts).where(rcpts.c.message_id.in_(gone)))
            conn.execute(delete(messages).where(messages.c.id.in_(gone)))
    return removed


def remove(conn: Connection, queue_id: str) -> int:
    ids = [i for (i,) in conn.execute(select(messages.c.id).where(messages.c.queue_id == queue_id))]
    if not ids:
        raise NotFound(f"no queued message {queue_id}")
    conn.execute(delete(rcpts).where(rcpts.c.message_id.in_(ids)))
    return conn.execute(delete(messages).where(messages.c.id.in_(ids))).rowcount
