"""Why was this mail refused: a bounce's facts matched against our own records.

Why: the desk answers from the bounce the customer forwards.  The facts ``bounce_parse``
found are matched against the rejection log -- by the reference our reply carries first
(``policy/rejection_log.py``), else by client IP, recipient, sender and a window around
the bounce's times -- and, for a connection that never got a banner, against the firewall
records (``store/blocks.py``).  The verdict names the kind of refusal, the evidence, whether
it is still in force at ``now`` (a block's expiry) and the advice of ``advice.KINDS``.  When
nothing matches, it says so and what the bounce lacks.

Standards: RFC 3463 (enhanced status), RFC 5321 §4.2.
Security: the did-you-mean suggestions name existing addresses; they are for the desk's
eyes (``for_desk``), never part of the advice text meant to be sent on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailstack.desk import advice, did_you_mean, reply_kinds
from mailstack.desk.bounce_parse import Facts
from mailstack.store import blocks, directory, rejections
from mailstack.store.errors import NotFound

MAX_WINDOW = timedelta(days=7)
SLACK = timedelta(hours=1)
# Refusals of mail to other domains (our customers sending out): the recipient is not ours.
OUTBOUND_KINDS = ("relay_denied", "op25b", "sunset", "auth_required")
# Refusals where the recipient's domain itself may be the mistake.
DOMAIN_HINT_KINDS = ("relay_denied", "no_connection", "not_ours", "unknown_user")
CLOCK_SKEW = timedelta(minutes=5)     # between the CLI that adds a block and the MX


@dataclass
class Explanation:
    kind: str
    facts: Facts
    rejection: rejections.Rejection | None = None
    block: blocks.Block | None = None
    in_force: str = "unknown"          # yes, no, unknown, permanent
    until: datetime | None = None
    evidence: list = field(default_factory=list)
    for_desk: list = field(default_factory=list)     # suggestions: never sent on
    values: dict = field(default_factory=dict)

    @property
    def text(self) -> advice.Kind:
        return advice.KINDS[self.kind]

    def words(self, name: str) -> str:
        return advice.render(getattr(self.text, name), **self.values)

    def as_dict(self) -> dict:
        return {"verdict": self.kind, "title": self.text.title, "why": self.words("why"),
                "evidence": self.evidence, "in_force": self.in_force,
                "until": self.until.isoformat(timespec="seconds") if self.until else None,
                "advice": {"sender": self.words("sender"), "customer": self.words("customer")},
                "for_desk": self.for_desk,
                "matched_ref": self.rejection.ref if self.rejection else None,
                "found": self.facts.found(), "missing": self.facts.missing(),
                "style": self.facts.style, "truncated": self.facts.truncated}


class Explainer:
    """``lookup(fn, *args)`` runs a store function (``db.run_sync``); ``hostnames``: ours."""

    def __init__(self, lookup, hostnames):
        self.lookup = lookup
        self.hostnames = {h.lower().rstrip(".") for h in hostnames}

    def explain(self, facts: Facts, now: datetime, client_ip: str | None = None) -> Explanation:
        if client_ip:
            facts.client_ip, facts.client_ip_from = client_ip, "given by the desk"
        row = self._rejection(facts)
        if row is not None:
            found = Explanation(reply_kinds.of_rejection(row), facts, rejection=row)
            found.evidence.append(_describe(row))
        elif facts.reply is not None:
            found = Explanation(self._reply_kind(facts), facts)
        else:
            found = self._no_banner(facts, now)
        if row is None and facts.ref:
            found.evidence.append(f"ref {facts.ref} is not in our rejection log: judged from "
                                  "the reply text alone (check the ref, or ask for the time)")
        self._complete(found, now)
        return found

    # --- matching -----------------------------------------------------------------------

    def _rejection(self, facts: Facts) -> rejections.Rejection | None:
        if facts.ref:
            rows = [r for r in self.lookup(rejections.search, text=facts.ref, limit=5)
                    if r.ref == facts.ref]
            if rows:
                return rows[0]
        window = _window(facts)
        for keys in (("client_ip", "recipient", "sender"), ("client_ip", "recipient"),
                     ("recipient", "sender"), ("client_ip", "sender")):
            query = {k: getattr(facts, k) for k in keys}
            if not all(query.values()) or not window:
                continue
            rows = self.lookup(rejections.search, **query, **window, limit=20)
            if rows:
                return _closest(rows, facts)
        return None

    def _reply_kind(self, facts: Facts) -> str:
        """From the reply text: ours when it is one of our replies' texts, or when it came
        from our MX; a guess from the status code alone is not enough."""
        kind, fields = reply_kinds.of_reply(facts.reply)
        if facts.ref or any(self._our_host(h) for h, _ in facts.remote_hosts):
            return kind
        if facts.remote_hosts or fields is None:     # another server, or not our wording
            return "not_ours"
        if facts.recipient and not self._our_domain(facts) and kind not in OUTBOUND_KINDS:
            return "not_ours"                        # our wording, another provider's domain
        return kind

    def _ours(self, facts: Facts) -> bool:
        if facts.ref or not facts.remote_hosts:
            return bool(facts.ref)
        return any(self._our_host(h) for h, _ in facts.remote_hosts)

    def _our_domain(self, facts: Facts) -> bool:
        return self._our_host((facts.recipient or "").rpartition("@")[2] or None)

    def _our_host(self, host: str | None) -> bool:
        if host is None:
            return False
        ours = self.hostnames | {name for name, _ in self.lookup(directory.list_domains)}
        return any(host == h or host.endswith("." + h) for h in ours)

    def _no_banner(self, facts: Facts, now: datetime) -> Explanation:
        if not facts.connection:
            return Explanation("other" if facts.ref else "not_ours", facts)
        if not self._ours(facts) and (facts.remote_hosts or not self._our_domain(facts)):
            return Explanation("not_ours", facts)
        if facts.client_ip:
            when = facts.latest or facts.at or now
            for block in self.lookup(blocks.history, facts.client_ip):
                if block.action == "firewall" and (block.covered(when)
                                                   or block.covered(when + CLOCK_SKEW)):
                    kind = "harvest" if block.source == "harvest" else "firewall"
                    return Explanation(kind, facts, block=block)
        return Explanation("no_connection", facts)

    # --- the verdict's details ----------------------------------------------------------

    def _complete(self, found: Explanation, now: datetime) -> None:
        facts, row = found.facts, found.rejection
        reply_text = row.reply if row else (str(facts.reply) if facts.reply else "")
        recipient = (row.rcpt_to if row else None) or facts.recipient
        ip = (row.client_ip if row else None) or facts.client_ip
        if found.kind in reply_kinds.BLOCK_KINDS and found.block is None and ip:
            found.block = self._block_for(ip, row.at if row else facts.latest or now, found.kind)
        if found.block is not None:
            self._in_force(found, found.block, now)
        else:
            found.in_force = reply_kinds.LASTS.get(advice.KINDS[found.kind].lasts, "unknown")
        found.values.update(_values(reply_text, recipient, ip, facts))
        if found.kind == "unknown_user" and recipient:
            found.for_desk += self._suggestions(recipient)
        if found.kind in DOMAIN_HINT_KINDS and recipient:
            found.for_desk += self._domain_hint(recipient)

    def _in_force(self, found: Explanation, b: blocks.Block, now: datetime) -> None:
        found.evidence.append(f"block of {b.network} ({b.action}, {b.source}) from "
                              f"{b.created_at.isoformat(timespec='seconds')}: {b.reason}; "
                              f"evidence: {b.evidence}")
        found.in_force = "yes" if b.in_force(now) else "no"
        found.until = b.removed_at or b.expires_at
        if found.in_force == "yes":
            found.values["until"] = f" on {b.expires_at.isoformat(timespec='minutes')} UTC"

    def _block_for(self, ip: str, at: datetime, kind: str) -> blocks.Block | None:
        history = [b for b in self.lookup(blocks.history, ip)
                   if b.covered(at) or b.covered(at + CLOCK_SKEW)]
        source = reply_kinds.BLOCK_KINDS[kind]
        preferred = [b for b in history if b.source == source] or history
        return preferred[-1] if preferred else None

    def _suggestions(self, recipient: str) -> list[str]:
        domain = recipient.rpartition("@")[2]
        try:
            existing = [a.address for a in self.lookup(directory.list_accounts, domain)]
            existing += [a for a, _ in self.lookup(directory.list_aliases, domain)]
        except NotFound:
            return []
        close = did_you_mean.similar_addresses(recipient, existing)
        return [f"did you mean {a}? (an existing address of {domain})" for a in close]

    def _domain_hint(self, recipient: str) -> list[str]:
        ours = [name for name, _ in self.lookup(directory.list_domains)]
        hint = did_you_mean.domain_hint(recipient, [*did_you_mean.WELL_KNOWN_DOMAINS, *ours])
        return [f"did you mean {hint}? (the domain looks mistyped)"] if hint else []


def _values(reply_text: str, recipient: str | None, ip: str | None, facts: Facts) -> dict:
    """The placeholders of the advice texts.  Only what the sender already saw (our reply's
    own words) or what the bounce says: never a check's ``detail``, which is for the desk."""
    fields = reply_kinds.of_reply_text(reply_text)[1] or {}
    url = reply_kinds.url_in(reply_text)
    return {"ip": ip, "recipient": recipient,
            "zone": fields.get("listing", "").split(";")[0].strip(),
            "domain": fields.get("domain") or (recipient or "").rpartition("@")[2],
            "reason": fields.get("reason") or facts.connection or reply_text,
            "url": f" ({url})" if url else "",
            "ip_note": f" ({ip})" if ip else " (the bounce does not name it)"}


def _window(facts: Facts) -> dict:
    if facts.at is None:
        return {}
    latest = min(facts.latest or facts.at, facts.at + MAX_WINDOW)
    half = (latest - facts.at) / 2
    return {"at": facts.at + half, "tolerance": half + SLACK}


def _closest(rows, facts: Facts) -> rejections.Rejection:
    """The row whose reply the bounce quotes, else the latest."""
    quoted = facts.reply.text.split(" (ref ")[0] if facts.reply else None
    same = [r for r in rows if quoted and quoted in r.reply]
    return (same or rows)[0]


def _describe(row: rejections.Rejection) -> str:
    return (f"rejection ref {row.ref} at {row.at.isoformat(timespec='seconds')} on port "
            f"{row.port} ({row.stage}): client {row.client_ip} (PTR {row.ptr or 'none'}, HELO "
            f"{row.helo or '-'}), MAIL FROM <{row.mail_from or ''}> RCPT TO "
            f"<{row.rcpt_to or ''}>; check {row.check_name}: {row.detail}; we replied: "
            f"{row.reply}")
