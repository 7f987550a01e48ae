"""A loopback DNS server for the benchmarks: what port 25's message authentication asks.

Why: with ``[authentication]`` on (the default), every message on port 25 asks DNS for
the sender's SPF and DMARC records; without a server of its own the benchmark would ask
the machine's resolver, off the machine.  This one answers from memory on 127.0.0.1:
``remote.test`` (the load generator's sender domain) publishes an SPF record that passes
for 127.0.0.1 and a DMARC ``p=none`` record; every other name is NXDOMAIN.  A TTL of one
hour, as a real zone would have: mailstack's resolver keeps the answers.

Usage: dns_records.py PORT [NAME=TEXT ...]   (runs until killed; each NAME=TEXT adds a
TXT record, e.g. a DKIM key: ``benchmarks/signed_port25.py``)
"""

from __future__ import annotations

import sys

from twisted.internet import defer, reactor
from twisted.names import common, dns, error, server

RECORDS = {
    ("remote.test", dns.TXT): [dns.Record_TXT(b"v=spf1 ip4:127.0.0.0/8 -all", ttl=3600)],
    ("_dmarc.remote.test", dns.TXT): [dns.Record_TXT(b"v=DMARC1; p=none", ttl=3600)],
}
NAMES = {name for name, _ in RECORDS}


class Records(common.ResolverBase):
    def _lookup(self, name, cls, type_, timeout):
        key = name.decode("ascii").lower().rstrip(".")
        if key not in NAMES:
            return defer.fail(error.DomainError(key))
        return defer.succeed(([dns.RRHeader(name, type_, dns.IN, 3600, r, auth=True)
                               for r in RECORDS.get((key, type_), [])], [], []))


def main(port: int, extra=()) -> None:
    for spec in extra:
        name, _, text = spec.partition("=")
        data = text.encode()
        RECORDS[(name.lower(), dns.TXT)] = [dns.Record_TXT(
            *(data[i:i + 250] for i in range(0, len(data), 250)), ttl=3600)]
        NAMES.add(name.lower())
    factory = server.DNSServerFactory(authorities=[Records()])
    reactor.listenTCP(port, factory, interface="127.0.0.1")
    reactor.listenUDP(port, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
