"""Whitehole requests: a sender's administrator asks for a whitelist entry for their mail
server (issue 21, item 3), and the desk approves or denies it.

Why a table of its own: the request is evidence.  It keeps what the sender sent (the
bounce, the IP, a contact address, the reason), what the page found when it was filed
(``findings``: the explainer's verdict on the bounce, the DNSBL answers, our blocks and
refusals for that IP, as JSON) and what the page told them (``outcome``); the desk's
decision is added to it, and an approval creates the whitelist entry that names the
request (``whitelist.request_ref``) with a date to review it, in the same transaction.
A request the page already answered (nothing to whitelist) is filed ``answered``: the desk
sees it, but approving it needs ``force``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from mailstack.store import whitelist
from mailstack.store.errors import Conflict, NotFound
from mailstack.store.schema import whitehole_requests

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PREFIX = "WH-"
STATES = ("open", "answered", "approved", "denied")
MAX_BOUNCE = 64 * 1024
MAX_REASON = 4000


@dataclass(frozen=True)
class Filing:
    """What the page files: the sender's words and the page's findings."""

    client_ip: str
    ip: str
    contact: str
    reason: str
    bounce: str
    verdict: str
    outcome: str
    findings: dict
    open: bool          # for the desk to decide; else answered by the page


@dataclass(frozen=True)
class Request:
    id: int
    ref: str
    created_at: datetime
    client_ip: str
    ip: str
    contact: str
    reason: str
    bounce: str
    verdict: str
    outcome: str
    findings: str       # JSON
    state: str
    decided_at: datetime | None = None
    decided_by: str | None = None
    note: str | None = None

    def summary(self) -> dict:
        return {"ref": self.ref, "filed": self.created_at.isoformat(timespec="seconds"),
                "ip": self.ip, "contact": self.contact, "verdict": self.verdict,
                "outcome": self.outcome, "state": self.state}


_COLUMNS = tuple(getattr(whitehole_requests.c, f) for f in Request.__dataclass_fields__)


def new_ref() -> str:
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(8))


def file(conn: Connection, filing: Filing, at: datetime) -> Request:
    """Store a request; its reference is new and unique."""
    ref = new_ref()
    while conn.execute(select(whitehole_requests.c.id)
                       .where(whitehole_requests.c.ref == ref)).first():
        ref = new_ref()
    conn.execute(insert(whitehole_requests).values(
        ref=ref, created_at=at, client_ip=filing.client_ip[:45], ip=filing.ip[:45],
        contact=filing.contact[:320], reason=filing.reason[:MAX_REASON],
        bounce=filing.bounce[:MAX_BOUNCE], verdict=filing.verdict[:32],
        outcome=filing.outcome[:16], findings=json.dumps(filing.findings, default=str),
        state="open" if filing.open else "answered"))
    return get(conn, ref)


def get(conn: Connection, ref: str) -> Request:
    """The request of ``ref`` (``WH-`` optional, any case), or NotFound."""
    key = ref.strip().upper()
    key = key if key.startswith(PREFIX) else PREFIX + key
    row = conn.execute(select(*_COLUMNS).where(whitehole_requests.c.ref == key)).first()
    if row is None:
        raise NotFound(f"no whitehole request {key}")
    return Request(*row)


def listing(conn: Connection, state: str | None = None, limit: int = 100) -> list[Request]:
    """Requests, newest first; only those in ``state`` when given."""
    c = whitehole_requests.c
    query = select(*_COLUMNS).order_by(c.created_at.desc(), c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(c.state == state)
    return [Request(*row) for row in conn.execute(query)]


def approve(conn: Connection, ref: str, *, by: str, at: datetime, review_days: int,
            note: str = "", force: bool = False) -> tuple[Request, whitelist.Entry]:
    """Whitelist the request's IP, naming the request as the entry's evidence, with a
    review date; the request is marked approved.  One transaction."""
    request = _undecided(conn, ref, force)
    reason = f"whitehole request {request.ref}: {request.reason}".replace("\n", " ")
    entry = whitelist.add(conn, request.ip, reason, by, at, request_ref=request.ref,
                          review_at=at + timedelta(days=review_days))
    _decide(conn, request, "approved", by, at, note)
    return get(conn, request.ref), entry


def deny(conn: Connection, ref: str, *, by: str, at: datetime, note: str = "") -> Request:
    request = _undecided(conn, ref, force=True)
    _decide(conn, request, "denied", by, at, note)
    return get(conn, request.ref)


def _undecided(conn: Connection, ref: str, force: bool) -> Request:
    request = get(conn, ref)
    if request.state in ("approved", "denied"):
        raise Conflict(f"{request.ref} was already {request.state} on "
                       f"{request.decided_at.isoformat(timespec='minutes')}")
    if request.state == "answered" and not force:
        raise Conflict(f"{request.ref} was answered on submission ({request.outcome}): "
                       "nothing to whitelist; use --force to approve it anyway")
    return request


def _decide(conn: Connection, request: Request, state: str, by: str, at: datetime,
            note: str) -> None:
    conn.execute(update(whitehole_requests).where(whitehole_requests.c.id == request.id)
                 .values(state=state, decided_at=at, decided_by=by[:64], note=note or None))
