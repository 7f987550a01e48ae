"""A recipient in a domain we host must be an account or an alias, or it is 550 5.1.1.

Why answered at RCPT and not bounced later: accepting mail for unknown users and bouncing it
makes us a backscatter source.  (Directory-harvest detection, a later check, counts these.)
A full mailbox is answered here for the same reason: no room left, or less room than the
SIZE the client declared in MAIL FROM, is 452 4.2.2 for that recipient alone.

Standards: RFC 5321 §3.3, RFC 1870 (SIZE), RFC 3463 (X.1.1, X.2.2).
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
            room, size = route.room, request.declared_size or 0
            if room is not None and (room <= 0 or size > room):
                return defer(self.name, "mailbox full",
                             replies.MAILBOX_FULL.format(address=request.recipient))
            return permit(self.name, "local recipient")
        return reject(self.name, "user unknown",
                      replies.UNKNOWN_USER.format(address=request.recipient))
