"""Whether a vacation action answers a message, and the answer (RFC 5230, RFC 3834).

Why a pure function: the interpreter only says "vacation, with these arguments"; whether
a reply goes out depends on the message (automated? a list? addressed to the account?),
on the account's addresses and on when this sender was last answered.  Delivery gives all
three -- the last reply time through ``last_replied(account, sender, handle)``, read from
the database in its transaction -- and records ``Reply.tracking`` in the same transaction
as the stored message, so a reply is never sent for mail that was not stored, nor twice.

No reply (``Silence``, with the rule that held) to:
- the null sender, or a sender that is an automated address: MAILER-DAEMON, LISTSERV,
  majordomo, owner-*, *-request (RFC 5230 §4.6), no-reply addresses, or one of the
  account's own addresses (a reply to oneself is a loop waiting to happen);
- mail with ``Auto-Submitted`` other than "no" (RFC 3834 §2, RFC 5230 §4.6), ``Precedence``
  bulk, list or junk (RFC 3834 §2), a ``List-Id`` or other RFC 2369 ``List-*`` field
  (RFC 5230 §4.6), or ``X-Auto-Response-Suppress`` asking for no out-of-office replies;
- mail where none of the account's addresses -- its own, its aliases, the address it was
  delivered to, the script's ``:addresses`` -- is in To, Cc, Bcc or Resent-To/Cc/Bcc
  (§4.5: not sent to the user personally);
- a sender answered with the same handle less than ``:days`` days ago (§4.1, §4.2).

``:from`` is used only when its address is one of the account's own (§4.3 lets an
implementation restrict it; a customer must not send auto-replies as somebody else);
otherwise the reply comes from the address the message was delivered to.

Standards: RFC 5230 §4.1-§4.6, §5; RFC 3834 §2, §3, §5; RFC 2369; RFC 2919.
Security: an auto-responder answers whoever the envelope names, and senders are forged:
the rules above keep it from answering lists, robots and bounces (backscatter, loops),
at most once per sender and handle in :days, always from the null sender so that what it
sends is never answered or bounced in turn (RFC 3834 §3.3, §5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mailstack import clock as business_time
from mailstack.message.address_list import parse_addresses
from mailstack.sieve.actions import Vacation
from mailstack.sieve.message_view import MessageView
from mailstack.sieve.vacation_reply import build

MIN_DAYS, DEFAULT_DAYS, MAX_DAYS = 1, 7, 365          # RFC 5230 §4.1
AUTOMATED_SENDERS = frozenset({"mailer-daemon", "listserv", "majordomo", "noreply",
                               "no-reply", "donotreply", "do-not-reply"})
LIST_FIELDS = ("list-id", "list-help", "list-subscribe", "list-unsubscribe", "list-post",
               "list-owner", "list-archive")
RECIPIENT_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})

LastReplied = Callable[[object, str, str], "datetime | None"]


@dataclass(frozen=True)
class Account:
    """The account whose script runs: ``id`` keys its reply records; ``address`` and
    ``aliases`` are the addresses known to be its own (RFC 5230 §4.5, item 1)."""
    id: object
    address: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tracking:
    """What delivery records with the message: (account, sender, handle) answered at."""
    account: object
    sender: str
    handle: str
    at: datetime


@dataclass(frozen=True)
class Reply:
    """The reply to queue: from the null envelope sender (RFC 5230 §5.1) to ``recipient``."""
    recipient: str
    message: bytes
    tracking: Tracking
    envelope_sender: str = ""


@dataclass(frozen=True)
class Silence:
    """No reply, and why (for the log)."""
    reason: str


def clamped_days(days: int | None) -> int:
    """:days with the site's bounds; the default when not given (RFC 5230 §4.1)."""
    return DEFAULT_DAYS if days is None else max(MIN_DAYS, min(MAX_DAYS, days))


def handle(explicit: str | None, subject: str | None, sender: str | None, mime: bool,
           reason: str) -> str:
    """The response's identity for tracking (RFC 5230 §4.2): the :handle given, or a
    hash of counted strings of :subject, :from, :mime and the reason."""
    if explicit is not None:
        return "handle:" + explicit
    digest = hashlib.sha256()
    for part in (subject, sender, "mime" if mime else "", reason):
        data = b"-" if part is None else part.encode("utf-8")
        digest.update(b"%d:" % len(data) + data)
    return "auto:" + digest.hexdigest()[:32]


def _address(text: str) -> str | None:
    found = parse_addresses(text.encode("utf-8"), groups=False)
    if not found or not found[0][3]:
        return None
    return (found[0][2] + b"@" + found[0][3]).decode("utf-8", "replace").lower()


def own_addresses(account: Account, message: MessageView) -> frozenset[str]:
    known = (account.address, *account.aliases, message.envelope_to)
    return frozenset(address.lower() for address in known if address)


def _first_word(value: str) -> str:
    """A field's value up to its parameters or comment: "auto-replied; x=y" -> "auto-replied"."""
    words = value.split(";")[0].split("(")[0].split()
    return words[0].lower() if words else ""


def _automated(sender: str) -> bool:
    local = (sender.rpartition("@")[0] or sender).lower()
    return (local in AUTOMATED_SENDERS or local.startswith("owner-")
            or local.endswith("-request"))


def why_not(vacation: Vacation, message: MessageView, account: Account) -> str | None:
    """The rule that forbids a reply to this message, or None (module docstring)."""
    sender = message.envelope_from
    if not sender:
        return "the sender is the null address"
    if _automated(sender):
        return f"the sender {sender} is an automated address (RFC 5230 §4.6)"
    own = own_addresses(account, message)
    if sender.lower() in own:
        return "the sender is the account itself"
    if any(_first_word(value) != "no" for value in message.header("auto-submitted")):
        return "the message is Auto-Submitted (RFC 3834 §2)"
    if any(_first_word(value) in BULK_PRECEDENCE for value in message.header("precedence")):
        return "the message has Precedence bulk, list or junk (RFC 3834 §2)"
    if any(message.exists(name) for name in LIST_FIELDS):
        return "the message comes from a mailing list (RFC 5230 §4.6)"
    if any(word in value.lower() for value in message.header("x-auto-response-suppress")
           for word in ("oof", "all")):
        return "the message asks for no automatic replies (X-Auto-Response-Suppress)"
    mine = own | {address.lower() for address in vacation.addresses}
    addressed = {f"{local}@{domain}".lower() for name in RECIPIENT_FIELDS
                 for local, domain in message.addresses(name) if domain}
    if not addressed & mine:
        return "the account is not in To, Cc or Bcc (RFC 5230 §4.5)"
    return None


def reply_from(vacation: Vacation, message: MessageView, account: Account) -> str:
    """The reply's From: :from if it is the account's (§4.3), else the address the
    message was delivered to (§5.4)."""
    if vacation.from_ is not None and _address(vacation.from_) in own_addresses(account,
                                                                                 message):
        return vacation.from_
    return message.envelope_to or account.address


def respond(vacation: Vacation, message: MessageView, account: Account, *,
            last_replied: LastReplied, clock, hostname: str) -> Reply | Silence:
    """The reply to send for this message, or why none is sent (RFC 5230 §4)."""
    reason = why_not(vacation, message, account)
    if reason is not None:
        return Silence(reason)
    sender = message.envelope_from.lower()
    now = business_time.now(clock)
    last = last_replied(account.id, sender, vacation.handle)
    if last is not None and (business_time.to_seconds(now) - business_time.to_seconds(last)
                             < vacation.days * 86400):
        return Silence(f"{sender} was answered less than {vacation.days} days ago "
                       f"(RFC 5230 §4.1)")
    try:
        text = build(vacation, message, to=message.envelope_from,
                     from_=reply_from(vacation, message, account), at=now, hostname=hostname)
    except Exception as error:         # the email package on a strange reason: no reply
        return Silence(f"the reply could not be built ({type(error).__name__})")
    return Reply(message.envelope_from, text, Tracking(account.id, sender, vacation.handle, now))
