"""Whitelist beats blacklist: a listed client skips every anti-spam check (not relay).

Why first in the chain: a customer's business partner on a shared hosting IP that some
DNSBL lists must still reach us, and the abuse desk decides that, not a third party.
Hostname suffixes match only forward-confirmed names (a PTR alone can claim anything).
Trusted networks (our own hosts, from the configuration) pass the same way.
"""

from __future__ import annotations

import ipaddress

from twisted.internet import defer

from mailstack.policy.decision import DUNNO, permit
from mailstack.store import whitelist


class Whitelisted:
    name = "whitelist"

    def __init__(self, db, trusted_networks=()):
        self.db = db
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in trusted_networks]

    def is_trusted(self, ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return any(address in network for network in self.trusted)

    @defer.inlineCallbacks
    def check(self, request):
        if self.is_trusted(request.client_ip):
            return permit(self.name, "trusted network")
        entries = yield self.db.read(whitelist.all_entries)
        verified = None
        if any(e.kind == "host" for e in entries) and request.client is not None:
            yield request.client.forward_confirmed()
            verified = request.client.verified_name
        for entry in entries:
            if entry.matches(request.client_ip, verified):
                return permit(self.name, f"whitelisted: {entry.entry} ({entry.reason})")
        return DUNNO


class TrustedNetwork:
    """At connect: our own hosts (``[antispam] trusted_networks``) skip every client check,
    so not even DNS is asked about them.  A PERMIT here opens no relay: relay is its own
    chain."""

    name = "trusted-network"

    def __init__(self, whitelist: Whitelisted):
        self.whitelist = whitelist

    def check(self, request):
        if self.whitelist.is_trusted(request.client_ip):
            return permit(self.name, "trusted network")
        return DUNNO
