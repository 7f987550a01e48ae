"""No reverse DNS, no mail: a client whose address has no PTR record is refused.

Why: legitimate mail servers have a PTR; botnet-infected home PCs mostly do not.  A DNS
failure is not proof of anything, so it only ever defers (450 4.7.25).  Optionally the PTR
name must resolve back to the client's address (forward-confirmed, FCrDNS).

Standards: RFC 8601 §2.7.3 / RFC 7372 (X.7.25 reverse DNS validation failed); wording as
Postfix's ``reject_unknown_client_hostname``.
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack import dns, replies
from mailstack.policy.decision import DUNNO, defer as defer_decision, reject


class HasReverseDNS:
    name = "rdns"

    def __init__(self, forward_confirmed: bool = False):
        self.forward_confirmed = forward_confirmed

    @defer.inlineCallbacks
    def check(self, request):
        client = request.client
        outcome = yield (client.forward_confirmed() if self.forward_confirmed else client.ptr())
        ip = request.client_ip
        if isinstance(outcome, dns.TempFail):
            return defer_decision(self.name, f"PTR lookup failed: {outcome.reason}",
                                  replies.NO_PTR_TEMPORARY.format(ip=ip))
        if isinstance(outcome, dns.NotFound) or not outcome.value:
            why = "no forward-confirmed PTR" if self.forward_confirmed else "no PTR"
            return reject(self.name, why, replies.NO_PTR.format(ip=ip))
        return DUNNO
