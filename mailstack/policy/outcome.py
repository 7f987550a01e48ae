"""What the policy answers the protocol at each SMTP stage: one value, one convention.

Why one type: the protocol used to receive a reply or None at MAIL, a (reply, recipient)
pair at RCPT and an exception after DATA, and had to know which was which.  Now every stage
answers an ``Outcome``: ``reply`` is the refusal to send (already in the rejection log,
with its ref), or None; what the stage accepted travels with it -- the recipient at RCPT
(``Accepted``), the sender a login window vouched for at MAIL (``Sender``), the client's
state at connect (``ClientState``), the recipients a message does not fit after DATA.
The decision that produced it rides along for the log.

Standards: RFC 5321 §4.2 (one reply per command).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstack.policy.decision import DUNNO, Decision
from mailstack.replies import Reply


@dataclass(frozen=True)
class Accepted:
    """One accepted RCPT: local accounts to copy into, or a remote address to queue."""

    address: str
    account_ids: tuple[int, ...] = ()
    remote: bool = False
    discard: bool = False   # accepted with 250 and not stored (spam traps, the reflector)
    reflect: bool = False   # the settings-check address: answered, not stored
    room: int | None = None  # quota headroom at RCPT time
    forward: tuple[str, ...] = ()   # remote addresses it forwards to (an alias, an SRS bounce)
    spam_blocker: tuple[int, ...] = ()  # of account_ids: SPAM Blocker on (at RCPT)
    spam_lists: tuple[int, ...] = ()    # of account_ids: with sender list entries (at RCPT)
    sieve: tuple = ()                   # of account_ids: (id, active script id, its version)


@dataclass(frozen=True)
class Sender:
    """Who sends this transaction: an SMTP AUTH login or the account of a login window."""

    account: object                 # realm.credentials.AccountRef
    method: str                     # "auth" | "pop-before-smtp"
    password_tls: bool | None       # did that login's password travel under TLS?


@dataclass(frozen=True)
class Outcome:
    reply: Reply | None = None      # the refusal to send; None: go on
    decision: Decision = DUNNO      # what decided (for the log)
    close: bool = False             # connect: drop the client before the banner
    client: object = None           # connect: the ClientState later requests carry
    sender: Sender | None = None    # MAIL: who sends (AUTH or a login window)
    accepted: Accepted | None = None   # RCPT: the recipient as accepted
    undeliverable: tuple = ()       # DATA: accepted recipients the message does not fit
    authentication: object = None   # DATA: authentication.Stamp (port 25): header, Junk
    forward: bool = True            # DATA: False: no copy is forwarded (failed DMARC p=reject)
    spam: object = None             # DATA: store.spam_filing.Screening (port 25): X-Spam-*, Junk

    @property
    def refused(self) -> bool:
        return self.reply is not None or self.close


def refused(reply: Reply, decision: Decision = DUNNO) -> Outcome:
    return Outcome(reply=reply, decision=decision)
