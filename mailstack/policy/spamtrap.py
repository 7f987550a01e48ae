"""Spam traps: addresses no person ever gave out.  Whoever sends to one is a spammer.

Why discard rather than reject: a rejection tells the spammer the address is a trap; a
250 followed by silence keeps the trap useful.  The client is put on the local block list
("spam trap hit: ADDRESS") with the evidence, and its later mail is refused.
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack import clock as clocks
from mailstack.policy.decision import DUNNO, Decision, Verdict


class SpamTrap:
    name = "spamtrap"

    def __init__(self, db, clock, traps, blocker):
        self.db, self.clock, self.blocker = db, clock, blocker
        self.traps = {t.lower() for t in traps}

    @defer.inlineCallbacks
    def check(self, request):
        if request.recipient not in self.traps:
            return DUNNO
        reason = f"spam trap hit: {request.recipient}"
        evidence = (f"MAIL FROM <{request.sender}> RCPT TO <{request.recipient}> "
                    f"HELO {request.helo} session {request.session}")
        yield self.db.run(self.blocker.add, request.client_ip, action="reject", source="trap",
                          reason=reason, evidence=evidence, added_by="spamtrap",
                          at=clocks.now(self.clock))
        return Decision(Verdict.DISCARD, self.name, reason)
