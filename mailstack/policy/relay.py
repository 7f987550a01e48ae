"""No open relay: mail for a domain we do not host is refused unless relaying is allowed.

Why its own check with a default of REJECT: a whitelist entry, a forgotten flag or an
address trick must never open relay.  Relaying is allowed only when the protocol says the
client has proven who it is (SMTP AUTH or, later, a POP-before-SMTP window); the MX never
sets that.  Address tricks (``%``, ``!``, source routes, quoted local parts, IP literals)
never reach here: the parser refuses them and the protocol answers with the same reply.

Standards: RFC 5321 §3.6, §7.1; RFC 2505 (anti-spam recommendations for MTAs).
"""

from __future__ import annotations

from mailstack import replies
from mailstack.policy.decision import DUNNO, reject


class HostedDomainsOnly:
    name = "relay"

    def check(self, request):
        route = request.route
        if route is not None and route.hosted:
            return DUNNO
        if request.authenticated_as:
            return DUNNO
        return reject(self.name, "relay denied",
                      replies.RELAY_DENIED.format(address=request.recipient))
