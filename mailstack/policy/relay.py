"""No open relay: the relay chain ends in REJECT, and only these checks can PERMIT.

Why a chain of its own whose default is REJECT: a whitelist entry, a forgotten flag or an
address trick must never open relay, so relaying is not "whatever nobody objected to" but
"what one of these checks explicitly allowed".  The whitelist is not in the relay chain
(it is in the client chain), so it cannot open relay whatever it says.  Which checks a
port's relay chain holds is in its table (``mx.py``, ``submission.py``): on port 25 the
sender check is there only when ``[smtp] mx_relay`` is not "never".  Address tricks (``%``,
``!``, source routes, quoted local parts, IP literals) never reach here: the parser refuses
them and the protocol answers with the same reply.

Standards: RFC 5321 §3.6, §7.1; RFC 2505 (anti-spam recommendations for MTAs).
Security: default REJECT; a PERMIT needs a hosted domain or a proven sender.
"""

from __future__ import annotations

from mailstack import replies
from mailstack.policy.decision import DUNNO, permit, reject


class HostedDomain:
    """Mail for a domain we host is not relaying (whether the user exists is ``recipients``)."""

    name = "hosted-domain"

    def check(self, request):
        route = request.route
        if route is not None and route.hosted:
            return permit(self.name, "hosted domain")
        return DUNNO


class ProvenSender:
    """A sender who proved who they are (SMTP AUTH, or a login window where the port's
    table lets one count) may send anywhere."""

    name = "proven-sender"

    def check(self, request):
        if request.authenticated_as is not None:
            return permit(self.name, f"sent by {request.authenticated_as.address}")
        return DUNNO


def denied(request):
    """The relay chain's default."""
    return reject("relay", "relay denied", replies.RELAY_DENIED.format(address=request.recipient))
