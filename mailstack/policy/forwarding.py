"""Port 25's rules for forwarding: SRS bounce addresses, and loops.

Why here: an alias that forwards to another provider makes us send mail out for clients
that proved nothing, and an SRS address in our domain (``srs.py``) is an address we relay
back out.  Neither may become an open relay or a loop:

- ``BounceAddress`` (relay table, port 25): a recipient of the SRS form in our SRS domain
  is accepted only when its hash and day check out; it is then routed to the address it
  stands for (the decision's ``subject`` is that route: ``port_policy`` takes it as the
  recipient's route, a forward like an alias's).  A forged hash, an expired or future day,
  a malformed address: 550 5.1.1, in the rejection log like every refusal.
- ``BouncesOnly`` (data table): such an address is a return path; mail to it from a
  non-null sender must be a delivery status notification (RFC 3464 ``multipart/report;
  report-type=delivery-status``), or it is refused 550 5.7.1.  The null sender, which
  every bounce uses (RFC 5321 §4.5.5), costs no look at the message.  So a replayed SRS
  address cannot carry arbitrary mail to the original sender for 21 days.
- ``HopLimit`` (data table): a message that would be forwarded and already has more than
  ``max_hops`` Received fields is refused 554 5.4.6 (RFC 5321 §6.3), so two aliases
  forwarding to each other across providers stop.  Mail that is only stored here cannot
  loop, so only messages with a forward are counted (a look at their header).

Standards: RFC 5321 §6.3 (loops), §4.5.5 (null reverse-path), RFC 3464 (DSN), RFC 7208
§1.1.1 and draft-mengwong-sender-rewrite (SRS).
Security: an SRS recipient is a relay only with a valid HMAC made with our secret and a
day within ``srs_max_age_days``; the reply never says which test failed.
"""

from __future__ import annotations

import re

from mailstack import clock as clocks, replies
from mailstack.policy.decision import DUNNO, Decision, Verdict, reject
from mailstack.srs import SRSError
from mailstack.store.routes import Recipients, Route

HEAD_LIMIT = 256 * 1024       # octets of a header looked at for Received and Content-Type
_RECEIVED = re.compile(rb"(?im)^received:")
_DSN = re.compile(rb"(?ims)^content-type:[ \t]*multipart/report\b[^\r\n]*(?:\r\n[ \t][^\r\n]*)*"
                  rb"report-type=\"?delivery-status")


def header_of(spool) -> bytes:
    head = spool.head(HEAD_LIMIT)
    end = head.find(b"\r\n\r\n")
    return b"\r\n" + (head[:end + 2] if end >= 0 else head)


class BounceAddress:
    """An SRS address of ours, checked and routed to the address it stands for."""

    name = "srs"

    def __init__(self, srs, clock):
        self.srs, self.clock = srs, clock

    def check(self, request):
        if self.srs is None or not self.srs.is_ours(request.recipient):
            return DUNNO
        try:
            original = self.srs.reverse(request.recipient, clocks.now(self.clock))
        except SRSError as e:
            return reject(self.name, str(e),
                          replies.SRS_INVALID.format(address=request.recipient))
        return Decision(Verdict.PERMIT, self.name, f"bounce address of <{original}>",
                        subject=Route(True, Recipients((), (original,))))


class BouncesOnly:
    """Mail to an SRS address from a non-null sender must be a DSN."""

    name = "srs-bounces-only"

    def __init__(self, srs):
        self.srs = srs

    def check(self, request):
        if self.srs is None or not request.sender or request.message is None:
            return DUNNO
        to_srs = [r.address for r in request.recipients if self.srs.is_ours(r.address)]
        if not to_srs or _DSN.search(header_of(request.message)):
            return DUNNO
        return reject(self.name, "not a delivery status notification",
                      replies.SRS_BOUNCES_ONLY.format(address=to_srs[0]))


class HopLimit:
    """A message to be forwarded with more than ``max_hops`` Received fields: a loop."""

    name = "hops"

    def __init__(self, max_hops: int):
        self.max_hops = max_hops

    def check(self, request):
        if request.message is None or not any(getattr(r, "forward", ())
                                               for r in request.recipients):
            return DUNNO
        hops = len(_RECEIVED.findall(header_of(request.message)))
        if hops <= self.max_hops:
            return DUNNO
        return reject(self.name, f"{hops} Received fields, more than {self.max_hops}",
                      replies.TOO_MANY_HOPS.format(hops=str(hops)))
