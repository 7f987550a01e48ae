"""DMARC (RFC 7489): does the From: domain stand behind this message, and what does it ask?

Why our own evaluation and not ``authheaders.dmarc_per_from``: the library re-reads and
re-parses the public suffix list from disk on every organizational-domain lookup (three
times per message: 30 ms each), aligns against one DKIM result only (the first
signature), cannot tell a DNS failure from "no record" (both are "none"), lowercases
the whole record and fails on a record with a stray ``;``, and ignores ``pct``.  The
rules themselves are short (§6.6): find the record at ``_dmarc.<From domain>`` or else at
the organizational domain's; DMARC passes when an SPF pass (MAIL FROM) or any DKIM pass
is aligned with the From domain -- relaxed by default (same organizational domain, from
the public suffix list: ``publicsuffixlist``, loaded once), strict with ``aspf=s`` /
``adkim=s`` -- and otherwise the policy applies: ``p``, or ``sp`` for a subdomain found
through its organizational domain, sampled by ``pct``.

Results: ``pass``, ``fail`` (with the policy asked), ``none`` (no record, or no single
From domain to check is ``permerror``), ``temperror`` (the record could not be looked up).

``Enforced`` is the data-table check: it turns a ``fail`` with ``p=reject`` into
``550 5.7.1`` naming the domain and its policy, unless the client is whitelisted or the
message was forwarded by a trusted ARC sealer (RFC 7489 §6.7 local policy); a
``temperror`` is ``451 4.7.5`` only with ``[authentication] dns_failure = "defer"``.
``p=quarantine`` is not a refusal: the message goes to the recipients' Junk folder
(``authentication.Stamp.junk``).

Standards: RFC 7489 §3.1 (alignment), §6.3 (record), §6.6 (evaluation), §6.7 (local
policy), RFC 8601 §2.7.x (dmarc=, header.from, policy.dmarc).
Security: a DNS failure is never a 5xx; the domain in the reply is the one we parsed
(ASCII, checked), not header text.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from email.utils import getaddresses

from mailstack import replies
from mailstack.policy.decision import DUNNO, Decision, Verdict, reject
from mailstack.policy.dns_bridge import DNSTempFail

DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}$")
POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class DMARCResult:
    result: str                 # pass fail none temperror permerror
    domain: str = ""            # the RFC5322.From domain
    policy: str = ""            # none quarantine reject: what the domain asks on fail
    applied: str = ""           # what applies after pct: the disposition (none/quarantine/reject)
    reason: str = ""


class OrganizationalDomains:
    """The public suffix list, read once (30 ms): ``of("a.b.example.co.uk")``."""

    def __init__(self, path: str = ""):
        from publicsuffixlist import PublicSuffixList
        if path:
            with open(path, "rb") as f:
                self._list = PublicSuffixList(f)
        else:
            self._list = PublicSuffixList()

    def of(self, domain: str) -> str:
        return self._list.privatesuffix(domain) or domain


def from_domain(message: bytes) -> str | None:
    """The one domain of the From: header field, or None (none, several, unreadable)."""
    head = message[:_head_end(message)]
    values = []
    for match in re.finditer(rb"(?im)^from[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head):
        values.append(match.group(1).replace(b"\r\n", b"").decode("utf-8", "replace"))
    addresses = [a for _, a in getaddresses(values) if a]
    if len(values) != 1 or len(addresses) != 1:
        return None
    domain = addresses[0].rpartition("@")[2].strip().lower().rstrip(".")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")     # RFC 7489 §3.1, A-labels
        except UnicodeError:
            return None
    return domain if DOMAIN.match(domain) else None


def parse_record(text: str) -> dict | None:
    """The tags of a DMARC record (RFC 7489 §6.3), None when it is not one: ``v=DMARC1``
    must be its first tag (§6.6.3); tag names are case-insensitive, values kept."""
    tags = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), value.strip())
        elif part.strip() and not tags:
            return None
    if not tags or next(iter(tags)) != "v" or tags["v"] != "DMARC1":
        return None
    return tags


def discover(bridge, domain: str, orgs: OrganizationalDomains):
    """(tags, found at the organizational domain?) or (None, False); raises DNSTempFail."""
    record = _record(bridge, domain)
    if record is not None:
        return record, False
    org = orgs.of(domain)
    if org != domain:
        record = _record(bridge, org)
        if record is not None:
            return record, True
    return None, False


def _record(bridge, domain: str):
    found = [r for r in (parse_record(t.decode("utf-8", "replace"))
                         for t in bridge.txt(f"_dmarc.{domain}")) if r is not None]
    return found[0] if len(found) == 1 else None      # several: as none (§6.6.3)


def evaluate(bridge, message: bytes, spf, dkim_results, orgs, sample=random.random):
    """The DMARC result of ``message`` given the SPF (MAIL FROM) and DKIM results."""
    domain = from_domain(message)
    if domain is None:
        return DMARCResult("permerror", reason="no single From domain")
    try:
        tags, inherited = discover(bridge, domain, orgs)
    except DNSTempFail:
        return DMARCResult("temperror", domain, reason="policy lookup failed")
    if tags is None:
        return DMARCResult("none", domain)
    policy = tags.get("sp") if inherited and tags.get("sp") else tags.get("p", "")
    policy = policy.lower()
    if policy not in POLICIES:
        policy = "none"         # §6.6.3: a record with an invalid p= and a rua is p=none
    if _aligned(domain, spf, dkim_results, tags, orgs):
        return DMARCResult("pass", domain, policy, "none")
    return DMARCResult("fail", domain, policy, _sampled(policy, tags.get("pct"), sample))


def _aligned(domain, spf, dkim_results, tags, orgs) -> bool:
    def same(other: str, mode: str) -> bool:
        other = other.lower().rstrip(".")
        if mode == "s":
            return other == domain
        return bool(other) and orgs.of(other) == orgs.of(domain)

    spf_mode, dkim_mode = tags.get("aspf", "r").lower(), tags.get("adkim", "r").lower()
    if spf.result == "pass" and same(spf.identity, spf_mode):
        return True
    return any(r.result == "pass" and same(r.domain, dkim_mode) for r in dkim_results)


def _sampled(policy: str, pct, sample) -> str:
    """§6.6.4: ``pct`` below 100 applies the policy to that share of failing mail only;
    the rest gets the next weaker policy."""
    try:
        share = int(pct) if pct is not None else 100
    except ValueError:
        share = 100
    if policy == "none" or share >= 100 or sample() * 100 < share:
        return policy
    return "quarantine" if policy == "reject" else "none"


def _head_end(message: bytes) -> int:
    end = message.find(b"\r\n\r\n")
    return end + 2 if end >= 0 else len(message)


class Enforced:
    """The data-table check: a DMARC ``p=reject`` refused, a temperror deferred if asked."""

    name = "dmarc"

    def __init__(self, defer_on_temperror: bool, trusted_forwarders=()):
        self.defer_on_temperror = defer_on_temperror
        self.trusted = frozenset(d.lower().rstrip(".") for d in trusted_forwarders)

    def check(self, request):
        stamp = request.authentication
        if stamp is None:
            return DUNNO
        dmarc = stamp.dmarc
        if dmarc.result == "temperror" or stamp.temperror:
            if self.defer_on_temperror:
                return Decision(Verdict.DEFER, self.name, "DNS failure during authentication",
                                replies.AUTHENTICATION_TEMPFAIL)
            return DUNNO
        if dmarc.result != "fail" or dmarc.applied != "reject":
            return DUNNO
        if stamp.arc.result == "pass" and stamp.arc.sealer in self.trusted:
            return DUNNO
        return self._unless_whitelisted(request, dmarc)

    def _unless_whitelisted(self, request, dmarc):
        client = request.client
        if client is None or not client.checked:    # trusted networks: our own hosts
            return DUNNO
        refusal = reject(self.name, f"DMARC policy of {dmarc.domain}: {dmarc.applied}",
                         replies.DMARC_REJECT.format(domain=dmarc.domain, policy=dmarc.policy))
        d = client.verdict()
        d.addCallback(lambda verdict: DUNNO if verdict.verdict is Verdict.PERMIT else refusal)
        return d
