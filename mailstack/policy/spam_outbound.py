"""Submission's content check (issue 18, item 1): a customer's message that rspamd
scores at or above ``[spam] submission_threshold`` is not sent.

Why: a stolen password turns a customer account into a spam source that passes every
check meant for strangers (it logged in, it sends from its own address); the recipients'
providers then block *our* outbound addresses for every customer.  rspamd is told the
message comes from an authenticated user (``User``, and the client's ``IP``) so that its
rules for unknown senders (reverse DNS, dynamic ranges) do not count; what is left is
the content.  Our own threshold, not rspamd's action, decides: its action thresholds
are tuned for inbound mail, and an ISP wants to stop outbound spam only when sure.

- score >= threshold -> ``550 5.7.1`` with our reference, through the rejection log
  (check ``spam-outbound``; the detail names the account, rspamd's score and symbols),
  so ``mailstack rejections`` explains it to the support desk;
- below it, or rspamd could not answer -> sent unchanged (no X-Spam-* field on outbound
  mail: ``Scanner.marks``); a failure is a warning line and
  ``mailstack_spam_scans{result="outbound_failed"}``, never a refusal.

Standards: RFC 6409 §8 (a submission server may refuse what its policy forbids),
RFC 3463 (5.7.1).
Security: the customer's reply carries no score or symbol (they would teach a spammer
with the password the rules); a filter outage never stops a customer's mail.
"""

from __future__ import annotations

from mailstack import replies
from mailstack.policy.decision import DUNNO, reject

CHECK = "spam-outbound"


class TooSpammy:
    """The data-table check of submission: refuses at or above ``threshold``."""

    name = CHECK

    def __init__(self, threshold: float):
        self.threshold = threshold

    def check(self, request):
        result = request.spam
        if result is None or result.action is None or result.score < self.threshold:
            return DUNNO
        account = request.authenticated_as
        who = getattr(account, "address", None) or "an unnamed sender"
        return reject(self.name, f"account {who}: {result.summary()} "
                      f"(outbound threshold {self.threshold:.2f})", replies.SPAM_OUTBOUND_REJECT)
