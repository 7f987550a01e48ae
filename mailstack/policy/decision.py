"""What a policy check returns: a verdict, who decided, why, and the reply to send.

Why a value and not an exception: a chain runs checks in order and the first one that is
not DUNNO wins (Postfix's restriction lists, Mailman's rules/chains).  The decision travels
unchanged to the protocol, which sends ``reply``, and to the log, which stores the same
text, so the support desk sees exactly what the customer saw (ARCHITECTURE C4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mailstack.replies import Reply


class Verdict(enum.Enum):
    DUNNO = "dunno"      # no opinion: ask the next check
    PERMIT = "permit"    # accept; later checks in this chain are skipped
    REJECT = "reject"    # permanent refusal (5xx)
    DEFER = "defer"      # temporary refusal (4xx): DNS or store trouble, never a 5xx
    DISCARD = "discard"  # accept and drop (spam traps)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    check: str = ""
    reason: str = ""
    reply: Reply | None = None
    subject: object = None   # what a PERMIT vouches for, e.g. the account of a login window

    @property
    def accepts(self) -> bool:
        return self.verdict in (Verdict.DUNNO, Verdict.PERMIT, Verdict.DISCARD)


DUNNO = Decision(Verdict.DUNNO)


def permit(check: str, reason: str = "") -> Decision:
    return Decision(Verdict.PERMIT, check, reason)


def reject(check: str, reason: str, reply: Reply) -> Decision:
    return Decision(Verdict.REJECT, check, reason, reply)


def defer(check: str, reason: str, reply: Reply) -> Decision:
    return Decision(Verdict.DEFER, check, reason, reply)
