"""DNS lookups as three plain outcomes: ``Found``, ``NotFound`` or ``TempFail``.

Why a wrapper: twisted.names reports NXDOMAIN, SERVFAIL, REFUSED and timeouts as different
exception types (a timeout is not even a ``DomainError``), and its ``MXCalculator`` returns a
single MX, ignores null MX (RFC 7505) and falls back to A records even on NXDOMAIN.  Policy
must tell "no such name" (a permanent fact: 5xx) from "could not ask" (never a 5xx), so
every lookup here returns one of three values and never raises.

Standards: RFC 5321 §5.1 (MX, implicit MX only on NODATA), RFC 7505 (null MX),
RFC 5782 §2 (DNSBL queries and the 127.0.0.0/8 answer convention), RFC 1035,
RFC 7208 §4.6.4 / RFC 6376 §3.6.2.2 / RFC 7489 §6.6.3 (the TXT and plain lookups that SPF,
DKIM and DMARC make: ``txt`` and ``records``, answers kept for their TTL, at most an hour).
Security: answers are not authenticated -- no DNSSEC validation here, so use a validating
resolver on a path you trust -- and a forged answer can change a DNSBL result, a PTR name
or an MX; twisted.names sends each query from a random source port with a random ID
(``os.urandom``), and every lookup is bounded by ``timeout``.  A name is encoded as IDNA
or refused, never sent raw.  A name in an answer is returned as text whatever octets it
holds (``host_name``: non-ASCII ones become U+FFFD, never an exception), but CR, LF and
other control characters stay: whoever writes such a name into mail must clean it, as
``delivery/routing.py`` does.  A failure to ask is ``TempFail``, never ``NotFound``, so an
unreachable resolver can never turn into a 5xx.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Generic, TypeVar, Union

from twisted.internet import defer
from twisted.names import client, dns, error

T = TypeVar("T")


@dataclass(frozen=True)
class Found(Generic[T]):
    value: T


@dataclass(frozen=True)
class NotFound:
    """NXDOMAIN, or the name exists with no record of the type (NODATA)."""

    nxdomain: bool = True


@dataclass(frozen=True)
class TempFail:
    reason: str


Outcome = Union[Found, NotFound, TempFail]


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


def dnsbl_name(ip: str, zone: str) -> str:
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return ".".join(reversed(ip.split("."))) + "." + zone
    nibbles = address.exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + "." + zone


def host_name(name: bytes) -> str:
    """A name from an answer as text.  DNS labels may hold any octet (RFC 2181 §11): one
    that is not ASCII becomes U+FFFD, which no later lookup encodes, instead of raising."""
    return name.decode("ascii", "replace").lower().rstrip(".")


def parse_nameserver(spec: str) -> tuple[str, int]:
    host, sep, port = spec.rpartition(":")
    if not sep or not host:
        return spec.strip("[]"), 53
    return host.strip("[]"), int(port)


KINDS = {"A": dns.A, "AAAA": dns.AAAA, "MX": dns.MX, "PTR": dns.PTR, "TXT": dns.TXT}
CACHE_ENTRIES = 20000       # answers kept for the message checks; the cache is emptied when full
MAX_TTL = 3600              # an answer is kept at most this long, whatever its TTL
NEGATIVE_TTL = 300          # "no such record" is kept this long (RFC 2308 caps it at 3 hours)


class Resolver:
    def __init__(self, nameservers, *, timeout: float, reactor):
        servers = [parse_nameserver(s) for s in nameservers] or None
        # Explicit servers skip resolv.conf and /etc/hosts (TWISTED-NOTES).
        self._resolver = (client.Resolver(servers=servers, reactor=reactor) if servers
                          else client.createResolver())
        self.timeout = timeout
        self.reactor = reactor
        self._cache: dict[tuple[str, str], tuple[float, object]] = {}

    @defer.inlineCallbacks
    def _query(self, name: str, type_: int):
        """The answer records of ``type_`` for ``name`` as an Outcome."""
        try:
            qname = name.encode("ascii") if name.isascii() else name.encode("idna")
        except UnicodeError:
            return NotFound(nxdomain=True)
        d = self._resolver.query(dns.Query(qname, type_, dns.IN), timeout=(self.timeout,))
        d.addTimeout(self.timeout * 1.5, self.reactor)
        try:
            answers, _authority, _additional = yield d
        except error.DNSNameError:
            return NotFound(nxdomain=True)
        except (error.DNSServerError, error.DNSQueryRefusedError, error.DNSFormatError,
                error.DNSNotImplementedError, error.DNSUnknownError) as e:
            return TempFail(type(e).__name__)
        except (defer.TimeoutError, defer.CancelledError, error.DNSQueryTimeoutError):
            return TempFail("timeout")
        except Exception as e:  # network errors and the like are temporary by nature
            return TempFail(type(e).__name__)
        records = [a.payload for a in answers if a.type == type_]
        return Found(records) if records else NotFound(nxdomain=False)

    # --- what SPF, DKIM and DMARC ask (policy/authentication.py), cached ---------------------

    def cached(self, name: str, kind: str):
        """The kept answer for ``records(name, kind)``, or None.  A dict read and the
        reactor's clock: safe from the verification threads, which then skip the trip
        to the reactor (``policy/dns_bridge.py``)."""
        entry = self._cache.get((name.lower().rstrip("."), kind))
        if entry is None or entry[0] <= self.reactor.seconds():
            return None
        return entry[1]

    def txt(self, name: str):
        """TXT records of ``name``: ``Found([bytes, …])``, each record's strings joined
        (RFC 7208 §3.3, RFC 6376 §3.6.2.2).  Cached like ``records``."""
        return self.records(name, "TXT")

    @defer.inlineCallbacks
    def records(self, name: str, kind: str):
        """Plain answers of ``kind`` (A, AAAA, MX, PTR, TXT) as an Outcome: addresses as
        text, MX as ``(preference, host)``, PTR as a host, TXT as bytes -- no implicit MX,
        no null-MX reading (what SPF's mechanisms want: RFC 7208 §5).  Found and NotFound
        are kept for their TTL (at most an hour; NotFound five minutes), a TempFail never."""
        key = (name.lower().rstrip("."), kind)
        hit = self.cached(*key)
        if hit is not None:
            return hit
        type_ = KINDS[kind]
        outcome, ttl = yield self._answers(key[0], type_)
        if isinstance(outcome, Found):
            outcome = Found([_plain(kind, r.payload) for r in outcome.value])
        if not isinstance(outcome, TempFail):
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            keep = min(ttl, MAX_TTL) if isinstance(outcome, Found) else NEGATIVE_TTL
            self._cache[key] = (self.reactor.seconds() + keep, outcome)
        return outcome

    @defer.inlineCallbacks
    def _answers(self, name: str, type_: int):
        """(Outcome of the answer records themselves, their smallest TTL)."""
        try:
            qname = name.encode("ascii") if name.isascii() else name.encode("idna")
        except UnicodeError:
            return NotFound(nxdomain=True), 0
        d = self._resolver.query(dns.Query(qname, type_, dns.IN), timeout=(self.timeout,))
        d.addTimeout(self.timeout * 1.5, self.reactor)
        try:
            answers, _authority, _additional = yield d
        except error.DNSNameError:
            return NotFound(nxdomain=True), 0
        except (defer.TimeoutError, defer.CancelledError, error.DNSQueryTimeoutError):
            return TempFail("timeout"), 0
        except Exception as e:  # SERVFAIL, REFUSED, network errors: temporary by nature
            return TempFail(type(e).__name__), 0
        records = [a for a in answers if a.type == type_]
        if not records:
            return NotFound(nxdomain=False), 0
        return Found(records), min(a.ttl for a in records)

    @defer.inlineCallbacks
    def ptr(self, ip: str):
        outcome = yield self._query(reverse_name(ip), dns.PTR)
        if isinstance(outcome, Found):
            return Found([host_name(r.name.name) for r in outcome.value])
        return outcome

    @defer.inlineCallbacks
    def addresses(self, host: str):
        """A and AAAA records of ``host``; TempFail only when neither could be asked."""
        results = yield defer.gatherResults([self._query(host, dns.A),
                                             self._query(host, dns.AAAA)])
        found = [ipaddress.ip_address(r.dottedQuad() if hasattr(r, "dottedQuad")
                                      else r._address).compressed
                 for outcome in results if isinstance(outcome, Found) for r in outcome.value]
        if found:
            return Found(found)
        temp = [o for o in results if isinstance(o, TempFail)]
        if temp:
            return temp[0]
        return NotFound(nxdomain=all(o.nxdomain for o in results))

    @defer.inlineCallbacks
    def forward_confirmed_ptr(self, ip: str):
        """The first PTR name that resolves back to ``ip`` (FCrDNS)."""
        names = yield self.ptr(ip)
        if not isinstance(names, Found):
            return names
        temp = None
        for name in names.value:
            back = yield self.addresses(name)
            if isinstance(back, Found) and ipaddress.ip_address(ip).compressed in back.value:
                return Found(name)
            if isinstance(back, TempFail):
                temp = back
        return temp or NotFound(nxdomain=False)

    @defer.inlineCallbacks
    def mx(self, domain: str):
        """Mail exchangers by preference: ``Found([(pref, host), …])``; null MX → ``Found([])``.

        With no MX record (NODATA) the domain itself is the implicit MX (RFC 5321 §5.1);
        NXDOMAIN is ``NotFound``.
        """
        outcome = yield self._query(domain, dns.MX)
        if isinstance(outcome, Found):
            hosts = sorted((r.preference, host_name(r.name.name)) for r in outcome.value)
            if any(host in ("", ".") for _, host in hosts):
                return Found([])  # RFC 7505: this domain accepts no mail
            return Found(hosts)
        if isinstance(outcome, NotFound) and not outcome.nxdomain:
            return Found([(0, domain.lower().rstrip("."))])
        return outcome

    @defer.inlineCallbacks
    def dnsbl(self, ip: str, zone: str):
        """``Found((codes, txt))`` when listed; ``NotFound`` when not."""
        name = dnsbl_name(ip, zone)
        outcome = yield self._query(name, dns.A)
        if not isinstance(outcome, Found):
            return outcome
        codes = [r.dottedQuad() for r in outcome.value]
        txt = yield self._query(name, dns.TXT)
        text = ""
        if isinstance(txt, Found):
            text = " ".join(b"".join(r.data).decode("utf-8", "replace") for r in txt.value)
        return Found((codes, text))


def _plain(kind: str, payload):
    if kind == "A":
        return payload.dottedQuad()
    if kind == "AAAA":
        return ipaddress.ip_address(payload.address).compressed
    if kind == "MX":
        return (payload.preference, host_name(payload.name.name))
    if kind == "PTR":
        return host_name(payload.name.name)
    return b"".join(payload.data)
