"""DNSBL/RBL: refuse clients that the configured block lists name.

Why these rules: an answer only counts when it is one of the list's "listed" codes
(default 127.0.0.2-127.0.0.255); 127.255.255.x answers are the list telling us *we* are
misusing it (over quota, open resolver), never a listing.  A list that says 127.0.0.1 is
listed is broken (or has started listing the world) and is switched off with a loud log
line, re-tested every hour.  Lookups run in parallel; a timeout or SERVFAIL never turns
into a 5xx -- it is skipped (and logged) or, by setting, a 450 4.7.1.

Standards: RFC 5782 (DNSBL queries, the 127.0.0.2 test entry); reply wording as Postfix.
"""

from __future__ import annotations

import ipaddress

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import dns, replies
from mailstack.metrics import NO_METRICS
from mailstack.policy.decision import DUNNO, defer as defer_decision, reject

log = Logger(namespace="mailstack.policy.dnsbl")
ERROR_CODES = ipaddress.ip_network("127.255.255.0/24")
RETEST_SECONDS = 3600


def listed_codes(spec) -> list[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]]:
    ranges = []
    for item in spec or ("127.0.0.2-127.0.0.255",):
        low, _, high = item.partition("-")
        ranges.append((ipaddress.IPv4Address(low.strip()), ipaddress.IPv4Address((high or low).strip())))
    return ranges


class DNSBL:
    """One configured list."""

    def __init__(self, config):
        self.zone = config.zone
        self.ranges = listed_codes(config.codes)
        self.reason_template = config.reason
        self.lookup_url_template = config.lookup_url
        self.broken = False

    def counts(self, code: str) -> bool:
        address = ipaddress.IPv4Address(code)
        if address in ERROR_CODES:
            return False
        return any(low <= address <= high for low, high in self.ranges)

    def lookup_url(self, ip: str) -> str:
        return self.lookup_url_template.format(ip=ip, zone=self.zone)

    def reason(self, ip: str, txt: str) -> str:
        return txt or self.reason_template.format(ip=ip, zone=self.zone,
                                                  lookup_url=self.lookup_url(ip))


class Listed:
    name = "dnsbl"

    def __init__(self, resolver, lists, clock, *, tempfail: str = "skip", metrics=NO_METRICS):
        self.resolver, self.clock, self.tempfail = resolver, clock, tempfail
        self.metrics = metrics       # every lookup's result, per zone
        self.lists = [DNSBL(c) for c in lists]
        self._tested_at = None

    @defer.inlineCallbacks
    def query(self, ip: str):
        """[(list, Outcome)] for every list that is not switched off, asked in parallel."""
        yield self._retest_if_due()
        active = [l for l in self.lists if not l.broken]
        outcomes = yield defer.gatherResults([self.resolver.dnsbl(ip, l.zone) for l in active])
        return list(zip(active, outcomes))

    @defer.inlineCallbacks
    def check(self, request):
        if not self.lists:
            return DUNNO
        ip = request.client_ip
        results = yield self.query(ip)
        hits = [(l, o) for l, o in results if isinstance(o, dns.Found)
                and any(l.counts(code) for code in o.value[0])]
        for dnsbl, outcome in results:
            self.metrics.dnsbl(dnsbl.zone, "listed" if any(d is dnsbl for d, _ in hits) else
                               "failed" if isinstance(outcome, dns.TempFail) else "clean")
        if hits:
            parts = [f"{l.zone}; {l.reason(ip, o.value[1])}" for l, o in hits]
            text = "; also blocked using ".join(parts)
            return reject(self.name, "listed by " + ", ".join(l.zone for l, _ in hits),
                          replies.DNSBL_LISTED.format(ip=ip, listing=text))
        failed = [l.zone for l, o in results if isinstance(o, dns.TempFail)]
        if failed:
            log.warn("DNSBL lookup failed for {ip} on {zones}", ip=ip, zones=", ".join(failed))
            if self.tempfail == "defer":
                return defer_decision(self.name, "lookup failed: " + ", ".join(failed),
                                      replies.DNSBL_TEMPFAIL.format(ip=ip))
        return DUNNO

    @defer.inlineCallbacks
    def _retest_if_due(self):
        now = self.clock.seconds()
        if self._tested_at is not None and now - self._tested_at < RETEST_SECONDS:
            return
        self._tested_at = now
        outcomes = yield defer.gatherResults([self.resolver.dnsbl("127.0.0.1", l.zone)
                                              for l in self.lists])
        for dnsbl, outcome in zip(self.lists, outcomes):
            broken = isinstance(outcome, dns.Found) and any(dnsbl.counts(c) for c in outcome.value[0])
            if broken and not dnsbl.broken:
                log.critical("DNSBL {zone} lists 127.0.0.1: it is broken or lists everyone; "
                             "switched OFF until it answers correctly", zone=dnsbl.zone)
            elif dnsbl.broken and not broken:
                log.warn("DNSBL {zone} answers correctly again; switched back on", zone=dnsbl.zone)
            dnsbl.broken = broken
