"""After DATA: a message must fit the mailboxes it goes to (RFC 1870 §6.2, 552 5.2.2).

Why after DATA as well as at RCPT: RCPT compares the quota headroom with the SIZE the client
declared (``recipients``), but a client need not declare one.  When the message is larger
than the room left in every mailbox that would keep it, the whole message is refused.  When
it fits some and not others, one reply must speak for all (no LMTP here): the ones with room
get the message and the sender a bounce for the rest -- refusing all would make the
sender's retry duplicate the copies for the others.

Standards: RFC 1870 §6.2, RFC 3463 (X.2.2 mailbox full).
"""

from __future__ import annotations

from mailstack import replies
from mailstack.policy.decision import DUNNO, reject


def kept(recipients) -> list:
    """The accepted recipients that keep a copy (not spam traps, not the reflector)."""
    return [r for r in recipients if not r.discard]


def without_room(recipients, size: int) -> list:
    """The kept recipients whose mailbox has less room than ``size`` octets."""
    return [r for r in kept(recipients) if r.room is not None and size > r.room]


class FitsMailbox:
    name = "quota"

    def check(self, request):
        keep = kept(request.recipients)
        full = without_room(request.recipients, request.size or 0)
        if full and len(full) == len(keep):
            return reject(self.name, "message larger than every mailbox's room",
                          replies.MESSAGE_OVER_QUOTA)
        return DUNNO
