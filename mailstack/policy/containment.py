"""A per-account ceiling on recipients per hour: the brake on a compromised account.

Why a temporary refusal (451 4.7.1): a legitimate customer with a big mailing simply
continues next hour; a spammer with a stolen password is slowed to a trickle and shows up
in the log.  Counted from the shared submissions table, so every process agrees.

Standards: RFC 3463 (X.7.1 delivery not authorized, here temporary).
"""

from __future__ import annotations

from datetime import timedelta

from twisted.internet import defer

from mailstack import clock as clocks, replies
from mailstack.policy.decision import DUNNO, defer as defer_decision
from mailstack.store import submissions


class RecipientsPerHour:
    name = "recipients-per-hour"

    def __init__(self, db, clock, limit: int):
        self.db, self.clock, self.limit = db, clock, limit

    @defer.inlineCallbacks
    def check(self, request):
        account = request.authenticated_as
        if account is None:
            return DUNNO
        since = clocks.now(self.clock) - timedelta(hours=1)
        sent = yield self.db.read(submissions.recipients_since, account.id, since)
        pending = len(request.recipients)   # accepted earlier in this transaction
        if sent + pending < self.limit:
            return DUNNO
        return defer_decision(self.name, f"{account.address}: {sent + pending} recipients "
                              f"in the last hour (limit {self.limit})", replies.RATE_LIMITED)
