"""SPF (RFC 7208) for the MAIL FROM and the HELO identities of a port-25 message.

Why pyspf: the record grammar, macros, the ten-lookup and two-void-lookup limits and
include/redirect recursion are the field's tested code (RFC 7208 §4.6.4, §5, §7); what we
change is only where its DNS goes: ``_Query.dns`` answers from our resolver through
``dns_bridge`` instead of dnspython (a subclass, not a patch of the module's global
``DNSLookup``), so ``[dns] nameservers``, the timeout and the cache apply to SPF too.

Both identities are checked (RFC 7208 §2.3, §2.4): the HELO one with ``postmaster@helo``,
the MAIL FROM one with the reverse-path (the null reverse-path is checked as
``postmaster@helo``, RFC 7208 §2.4).  DMARC uses the MAIL FROM result (RFC 7489 §3.1.2).
A lookup that could not be made is ``temperror`` (RFC 7208 §2.6.6).

Standards: RFC 7208, RFC 8601 §2.7.2 (smtp.mailfrom, smtp.helo).
Security: runs in a worker thread; its DNS work is bounded by pyspf's limits (ten
mechanisms that query, two void lookups, 20 s in all).
"""

from __future__ import annotations

from dataclasses import dataclass

import spf

from mailstack.policy.dns_bridge import DNSTempFail

QUERY_TIME = 20                 # seconds for one identity in all (RFC 7208 §4.6.4)


@dataclass(frozen=True)
class SPFResult:
    result: str                 # pass fail softfail neutral none temperror permerror
    identity: str               # the domain checked
    reason: str = ""


class _Query(spf.query):
    """pyspf's evaluation with its lookups answered by our resolver."""

    def __init__(self, dns_bridge, **kwargs):
        super().__init__(**kwargs)
        self.bridge = dns_bridge

    def dns(self, name, qtype, cnames=None, ignore_void=False):
        # pyspf's own asks dnspython and caches every answer in the query; ours asks the
        # resolver (which caches by TTL) and keeps pyspf's void-lookup count (§4.6.4).
        if not name:
            raise spf.PermError("invalid query")
        name = str(name).rstrip(".").lower()
        if not all(0 < len(label) < 64 for label in name.split(".")):
            return []
        kind = "TXT" if qtype == "SPF" else qtype
        try:
            values = self.bridge.records(name, kind)
        except DNSTempFail as e:
            raise spf.TempError(f"DNS {e}")
        if kind == "TXT":
            values = [(v,) for v in values]       # pyspf joins each record's strings
        if not values and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return list(values)


def check(bridge, client_ip: str, sender: str, helo: str) -> tuple[SPFResult, SPFResult]:
    """(MAIL FROM result, HELO result)."""
    helo = helo or ""
    helo_result = _one(bridge, client_ip, f"postmaster@{helo}", helo, helo)
    if not sender:
        return SPFResult(helo_result.result, helo, helo_result.reason), helo_result
    domain = sender.rpartition("@")[2]
    return _one(bridge, client_ip, sender, helo, domain), helo_result


def _one(bridge, client_ip: str, sender: str, helo: str, identity: str) -> SPFResult:
    if not identity or "." not in identity or identity.startswith("["):
        return SPFResult("none", identity, "no domain to check")
    try:
        result, _code, explanation = _Query(bridge, i=client_ip, s=sender, h=helo,
                                            querytime=QUERY_TIME).check()
    except Exception as e:     # pyspf raising out of check(): its own bug, not the sender's
        return SPFResult("temperror", identity, type(e).__name__)
    return SPFResult(result, identity, explanation or "")
