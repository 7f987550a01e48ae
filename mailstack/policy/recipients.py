"""A recipient in a domain we host must be an account or an alias, or it is 550 5.1.1.

Why answered at RCPT and not bounced later: accepting mail for unknown users and bouncing it
makes us a backscatter source.  (Directory-harvest detection, a later check, counts these.)

Standards: RFC 5321 §3.3, RFC 3463 (X.1.1).
"""

from __future__ import annotations

from mailstack import replies
from mailstack.policy.decision import DUNNO, defer, permit, reject


class LocalRecipientExists:
    name = "recipients"

    def check(self, request):
        route = request.route
        if route is None or not route.hosted:
            return DUNNO
        if route.recipients.exists:
            if route.room is not None and route.room <= 0:
                return defer(self.name, "mailbox full",
                             replies.MAILBOX_FULL.format(address=request.recipient))
            return permit(self.name, "local recipient")
        return reject(self.name, "user unknown",
                      replies.UNKNOWN_USER.format(address=request.recipient))
