"""What DNS says about a connecting client, looked up once per session and shared by checks.

Why shared: the reverse-DNS check, the whitelist's hostname suffixes, the Received header
and the rejection log all want the PTR name; asking DNS once per connection keeps the MX
fast and the answers consistent within a session.
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack import dns


class ClientFacts:
    def __init__(self, resolver, ip: str):
        self.resolver, self.ip = resolver, ip
        self._ptr = None
        self._confirmed = None
        self.ptr_name: str | None = None        # first PTR name, once known
        self.verified_name: str | None = None   # forward-confirmed name, once known

    def ptr(self):
        """Deferred Outcome of the PTR lookup (``Found([names])``)."""
        if self._ptr is None:
            self._ptr = self.resolver.ptr(self.ip)
            self._ptr.addCallback(self._remember_ptr)
        return share(self._ptr)

    def forward_confirmed(self):
        """Deferred Outcome: ``Found(name)`` when a PTR name resolves back to the IP."""
        if self._confirmed is None:
            self._confirmed = self.resolver.forward_confirmed_ptr(self.ip)
            self._confirmed.addCallback(self._remember_confirmed)
        return share(self._confirmed)

    def _remember_ptr(self, outcome):
        if isinstance(outcome, dns.Found) and outcome.value:
            self.ptr_name = outcome.value[0]
        return outcome

    def _remember_confirmed(self, outcome):
        if isinstance(outcome, dns.Found):
            self.verified_name = outcome.value
        return outcome


def share(d: defer.Deferred) -> defer.Deferred:
    """A new Deferred with the same result, so several checks can wait on one lookup."""
    shared = defer.Deferred()
    d.addBoth(lambda result: (shared.callback(result), result)[1])
    return shared
