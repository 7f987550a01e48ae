"""Run checks in order; the first decision that is not DUNNO wins.

Why the order lives only here: reading one table tells an operator (and the support desk)
which check can pre-empt which -- "whitelist beats blacklist" is a line order, not a flag
buried in a check.  A check exposes ``name`` and ``check(request)``, returning a Decision
or a Deferred of one.  A check that raises becomes a DEFER (4xx): a bug or an outage must
never turn into a permanent bounce.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import replies
from mailstack.policy.decision import DUNNO, Decision, Verdict

log = Logger(namespace="mailstack.policy")


class Chain:
    def __init__(self, name: str, checks):
        self.name = name
        self.checks = tuple(checks)

    @defer.inlineCallbacks
    def run(self, request) -> Decision:
        for check in self.checks:
            try:
                decision = yield defer.maybeDeferred(check.check, request)
            except Exception:
                log.failure("policy check {check} failed", check=check.name)
                return Decision(Verdict.DEFER, check.name, "check failed",
                                replies.STORE_UNAVAILABLE)
            if decision.verdict is not Verdict.DUNNO:
                return decision
        return DUNNO
