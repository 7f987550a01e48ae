"""What a whitehole request can achieve: the bounce explained, and the IP's records.

Why: a whitelist entry only lifts the anti-spam checks, and the desk only grants one for a
DNSBL listing (a third party's judgement; our own blocks are reviewed with ``block
remove``, and no entry makes an unknown address exist).  So before a request reaches the
desk, the page (``protocols/whitehole_page.py``) runs the explainer on the pasted bounce,
asks the configured DNSBLs about the IP, and reads our refusals and blocks of that IP;
``assess`` then says whether the request can succeed and what to tell the sender:

- ``eligible``: we refused the IP for a DNSBL listing and it is still listed (or the lists
  could not be asked): the request goes to the desk;
- ``delisted``: we refused it for a listing that is gone: mail is accepted again;
- ``no_refusal``: no refusal or block of that IP in the last ``REFUSAL_WINDOW``;
- ``not_dnsbl``: refused for another reason (unknown user, no PTR, our own block ...);
- ``whitelisted``: it is on the whitelist already.

``gather`` runs in a database thread (one read transaction: the explainer's lookups are
bound to it), never on the reactor.

Standards: RFC 5782 (DNSBLs), RFC 3463.
Security: the findings name our records of the IP, which anyone may type in; only the
kinds of refusal leave for the page (``Assessment``), never a record's addresses, HELO or
a block's evidence (which can name a spam trap), and never the explainer's did-you-mean
suggestions (``for_desk``): they stay in the stored findings, for the desk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailstack.desk import advice, bounce_parse, reply_kinds
from mailstack.desk.explainer import Explainer
from mailstack.store import blocks, rejections, whitelist

REFUSAL_WINDOW = timedelta(days=30)
REFUSALS = 50
OUTCOMES = ("eligible", "delisted", "no_refusal", "not_dnsbl", "whitelisted")


@dataclass
class Records:
    """What the bounce says and what our records say about the IP."""

    ip: str                             # the IP the request is for
    verdict: str                        # the explainer's kind for the bounce
    explanation: dict                   # Explanation.as_dict(): for the desk
    bounce_ip: str | None               # the sending server the bounce names
    bounce_recipient: str | None        # as the bounce gives it (the sender pasted it)
    bounce_matches_ip: bool             # the bounce's refusal record is of this IP
    refusals: list[dict] = field(default_factory=list)    # newest first
    blocks: list[str] = field(default_factory=list)       # active blocks, for the desk
    whitelisted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Listing:
    """One DNSBL's answer about the IP now: listed, clean, failed."""

    zone: str
    state: str
    lookup_url: str


@dataclass(frozen=True)
class Assessment:
    outcome: str
    kind: str                  # the refusal the answer is about (advice.KINDS)
    listed_on: tuple[str, ...] = ()
    ip: str = ""

    @property
    def open(self) -> bool:
        return self.outcome == "eligible"

    @property
    def title(self) -> str:
        """What the refusal was, in the words ``explain`` uses."""
        return advice.KINDS.get(self.kind, advice.KINDS["other"]).title

    @property
    def sender_advice(self) -> str:
        """What the sender should do, filled with the IP only: never our records' reason
        or dates (a block's reason can name a spam trap)."""
        return advice.render(advice.KINDS.get(self.kind, advice.KINDS["other"]).sender,
                             ip=self.ip)


def verdict_title(records: Records) -> str:
    """What the bounce says, as ``explain`` titles it."""
    return advice.KINDS.get(records.verdict, advice.KINDS["other"]).title


def gather(conn, bounce: str, ip: str, now: datetime, hostnames) -> Records:
    """The findings of the store, in the caller's transaction (a database thread)."""
    explainer = Explainer(lambda fn, *a, **kw: fn(conn, *a, **kw), hostnames)
    found = explainer.explain(bounce_parse.read(bounce), now)
    row = found.rejection
    since = now - REFUSAL_WINDOW
    refusals = [r for r in rejections.search(conn, client_ip=ip, limit=REFUSALS) if r.at >= since]
    return Records(
        ip=ip, verdict=found.kind, explanation=found.as_dict(),
        bounce_ip=(row.client_ip if row else None) or found.facts.client_ip,
        bounce_recipient=found.facts.recipient,
        bounce_matches_ip=row is not None and row.client_ip == ip,
        refusals=[_refusal(r) for r in refusals],
        blocks=[f"{b.network} {b.action} ({b.source}) until "
                f"{b.expires_at.isoformat(timespec='minutes')}: {b.reason}"
                for b in blocks.active_for(conn, ip, now)],
        whitelisted=[e.entry for e in whitelist.all_entries(conn) if e.matches(ip, None)])


def _refusal(row: rejections.Rejection) -> dict:
    return {"at": row.at.isoformat(timespec="seconds"), "ref": row.ref, "check": row.check_name,
            "kind": reply_kinds.of_rejection(row), "permanent": row.reply.startswith("5")}


def assess(records: Records, listings: list[Listing]) -> Assessment:
    """What the request can achieve, from the records and the DNSBLs' answers now."""
    listed = tuple(l.zone for l in listings if l.state == "listed")
    ip = records.ip
    if records.whitelisted:
        return Assessment("whitelisted", records.verdict, listed, ip)
    if any(r["kind"] == "dnsbl" and r["permanent"] for r in records.refusals):
        if listed or any(l.state == "failed" for l in listings):
            return Assessment("eligible", "dnsbl", listed, ip)
        return Assessment("delisted", "dnsbl", (), ip)
    if not records.refusals and not records.blocks:
        return Assessment("no_refusal", records.verdict, listed, ip)
    if records.bounce_matches_ip:
        kind = records.verdict
    else:
        kind = records.refusals[0]["kind"] if records.refusals else "local_block"
    return Assessment("not_dnsbl", kind, listed, ip)


def findings(records: Records, listings: list[Listing], assessment: Assessment) -> dict:
    """Everything found, as stored with the request for the desk."""
    return {"outcome": assessment.outcome, "kind": assessment.kind,
            "dnsbl": [l.__dict__ for l in listings], "refusals": records.refusals,
            "blocks": records.blocks, "whitelisted": records.whitelisted,
            "bounce_ip": records.bounce_ip, "explanation": records.explanation}
