"""An authenticated customer sends as one of their own addresses, or is refused 553 5.7.1.

Why: a stolen password must not let the thief forge any of our customers as the sender,
and other providers' DMARC checks punish us when our users forge foreign domains.  The
null sender is allowed (mail programs send delivery notifications with it), and an
operator may let an account send as anyone (``mailstack account sender-rule ADDR any``),
for a customer's own mail server relaying through us.

Standards: RFC 6409 §8.1 (sender validation), RFC 3463 (X.7.1).
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack import replies
from mailstack.policy.decision import DUNNO, reject
from mailstack.store import directory


class OwnAddressesOnly:
    name = "sender-ownership"

    def __init__(self, db):
        self.db = db

    @defer.inlineCallbacks
    def check(self, request):
        account = request.authenticated_as
        if account is None or not request.sender:
            return DUNNO
        # The common cases need no read: the account's own address, or the rule "any" as
        # read at login (a withdrawn rule applies from the next login).
        if account.sends_as_any or request.sender == account.address:
            return DUNNO
        allowed = yield self.db.read(directory.may_send_as, account.id, request.sender)
        if allowed:
            return DUNNO
        return reject(self.name, f"{request.sender} not owned by {account.address}",
                      replies.SENDER_NOT_OWNED.format(address=request.sender, user=account.address))
