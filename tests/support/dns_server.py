"""A real DNS server on loopback for the tests, built from twisted.names.

Tests never reach outside the machine, so DNS in tests is a server the tests start: it
answers over UDP and TCP on 127.0.0.1 from records held in memory, and can be told to
answer SERVFAIL or to stay silent (a timeout) for chosen names.  mailstack talks to it
exactly as to any nameserver (``[dns] nameservers = ["127.0.0.1:PORT"]``).
"""

from __future__ import annotations

from collections import defaultdict

from twisted.internet import defer, reactor
from twisted.names import common, dns, error, server

from tests.support.reactor import call

TYPES = {"A": (dns.A, dns.Record_A), "AAAA": (dns.AAAA, dns.Record_AAAA),
         "MX": (dns.MX, dns.Record_MX), "PTR": (dns.PTR, dns.Record_PTR),
         "TXT": (dns.TXT, dns.Record_TXT), "CNAME": (dns.CNAME, dns.Record_CNAME)}


class Failing(Exception):
    """Raised inside the server: twisted.names answers SERVFAIL."""


class MemoryResolver(common.ResolverBase):
    def __init__(self):
        super().__init__()
        self.records: dict[tuple[str, int], list] = defaultdict(list)
        self.servfail: set[str] = set()
        self.servfail_all = False            # SERVFAIL to every question
        self.silent: set[str] = set()
        self.names: set[str] = set()

    def _lookup(self, name, cls, type_, timeout):
        key = name.decode("ascii").lower().rstrip(".")
        if key in self.silent:
            return defer.Deferred()  # never answers: the client times out
        if key in self.servfail or self.servfail_all:
            return defer.fail(Failing(key))
        if key not in self.names:
            return defer.fail(error.DomainError(key))  # NXDOMAIN
        answers = [dns.RRHeader(name, type_, dns.IN, 60, r, auth=True)
                   for r in self.records.get((key, type_), [])]
        return defer.succeed((answers, [], []))  # empty = NODATA


class DNSServer:
    def __init__(self):
        self.resolver = MemoryResolver()
        self.udp = self.tcp = None

    def start(self) -> "DNSServer":
        call(self._start)
        return self

    def _start(self):
        factory = server.DNSServerFactory(authorities=[self.resolver])
        self.tcp = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.port = self.tcp.getHost().port
        self.udp = reactor.listenUDP(self.port, dns.DNSDatagramProtocol(factory),
                                     interface="127.0.0.1")

    def stop(self) -> None:
        def _stop():
            return defer.gatherResults([self.udp.stopListening(), self.tcp.stopListening()])
        call(_stop)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, name: str, kind: str, *values) -> None:
        """``add("mx.example.test", "A", "127.0.0.5")``, ``add("example.test", "MX", 10, "mx…")``."""
        type_, record = TYPES[kind]
        key = name.lower().rstrip(".")
        self.resolver.names.add(key)
        if kind == "TXT":
            self.resolver.records[(key, type_)].append(record(*(v.encode() for v in values)))
        elif kind == "MX" and values[1] == ".":
            self.resolver.records[(key, type_)].append(record(values[0], b""))  # null MX
        else:
            self.resolver.records[(key, type_)].append(record(*values))

    def add_ptr(self, ip: str, name: str, *, forward: bool = True) -> None:
        self.add(reverse_name(ip), "PTR", name)
        if forward:
            self.add(name, "A", ip)

    def exists(self, name: str) -> None:
        """Make ``name`` exist with no records (NODATA for every type)."""
        self.resolver.names.add(name.lower().rstrip("."))

    def fail(self, name: str) -> None:
        self.resolver.servfail.add(name.lower().rstrip("."))

    def ignore(self, name: str) -> None:
        self.resolver.silent.add(name.lower().rstrip("."))


def reverse_name(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


_FAILING: DNSServer | None = None


def failing_nameserver() -> str:
    """The address of a DNS server on loopback that answers SERVFAIL to every question at
    once, started once per test process: the default ``[dns] nameservers`` of the test
    servers.  Every lookup is a ``TempFail``, as with a nameserver that never answers (a
    remote domain's mail is deferred, never bounced; SPF and DMARC are temperror), but
    without the resolver's timeout: port 25 checks SPF and DMARC for every message, and a
    silent nameserver held each delivery for that long."""
    global _FAILING
    if _FAILING is None:
        _FAILING = DNSServer().start()
        _FAILING.resolver.servfail_all = True
    return _FAILING.address
