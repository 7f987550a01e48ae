"""The Sieve actions that send mail: redirect, vacation, and the DSN of a reject -- each
a row of the delivery's transaction (``sieve_delivery.py`` says why).

Redirect (RFC 5228 §4.2): the message as received, behind our Received field and a
``X-Sieve-Redirected-From`` field naming the account, queued for the outbound runner.
Like a forwarded copy (``routing.py``) it is not DKIM-signed by us and its envelope
sender is rewritten by SRS when the sender is not one of our hosted domains, so the
destination's SPF check passes.  Loops are stopped (RFC 5228 §4.2, §10): no redirect of
a message that already went through this account's redirect (our field names it), that
carries ``MAX_HOPS`` Received fields or more, or to the account's own addresses; and the
interpreter allows at most ``MAX_REDIRECTS`` per message.

Vacation (RFC 5230, RFC 3834): ``sieve/vacation.py`` decides and builds the reply; here
it is queued from the null sender, DKIM-signed by its ``From:`` domain (an address of
the account's), and the (account, sender, handle) record is written, all in the
transaction that stores the message.

Reject that cannot be a 550 (several recipients, submission): a DSN to the sender
(``bounce.return_to_sender``; never to the null sender).

Standards: RFC 5228 §4.2, §10; RFC 5230 §4, §5; RFC 3834 §3, §5; RFC 5429 §2.1;
RFC 3464 (DSN).
Security: every address here came from the envelope or a checked script; a redirect
never goes back to the account itself; replies go from the null sender so they are
never answered or bounced in turn (RFC 3834 §3.3).
"""

from __future__ import annotations

from mailstack.clock import FixedClock
from mailstack.delivery import bounce
from mailstack.sieve import vacation as vacations
from mailstack.store import directory, queue, vacation_replies

MAX_HOPS = 25            # Received fields a message may carry and still be redirected
MARKER = "X-Sieve-Redirected-From"


def redirect(conn, run, script, view, address: str, at) -> str | None:
    """Queue the redirected copy; why it was refused, or None."""
    addresses = directory.sender_addresses(conn, script.account_id)     # own, aliases
    own = {a.lower() for a in addresses}
    if address.lower() in own | {view.envelope_to.lower()}:
        return "it is the account's own address"
    marked = {value.strip().strip("<>").lower() for value in view.header(MARKER)}
    if marked & own:
        return "a loop: the message was redirected by this account before"
    if len(view.header("received")) >= MAX_HOPS:
        return f"a loop: the message carries {MAX_HOPS} Received fields or more"
    sender = run.sender
    srs = run.sieve.srs
    if sender and srs is not None and not directory.is_hosted(conn,
                                                             sender.rpartition("@")[2]):
        sender = srs.forward(sender, at)
    marker = f"{MARKER}: <{addresses[0]}>\r\n".encode("utf-8")
    queue.enqueue(conn, sender, [address], run.spool.with_prefix(marker + run.received), at,
                  queue_id=run.queue_id)
    return None


def vacation(conn, run, script, view, action, at) -> str | None:
    """Queue the reply and record it; why none was sent, or None."""
    addresses = directory.sender_addresses(conn, script.account_id)
    account = vacations.Account(script.account_id, addresses[0], tuple(addresses[1:]))
    answer = vacations.respond(
        action, view, account, clock=FixedClock(at), hostname=run.sieve.hostname,
        last_replied=lambda a, s, h: vacation_replies.last_replied(conn, a, s, h))
    if isinstance(answer, vacations.Silence):
        return answer.reason
    signed = run.sieve.signer.signatures(answer.message, at)
    queue.enqueue(conn, "", [answer.recipient], signed + answer.message, at,
                  account_id=script.account_id, queue_id=f"{run.queue_id}-vac")
    tracking = answer.tracking
    vacation_replies.record(conn, tracking.account, tracking.sender, tracking.handle,
                            tracking.at)
    return None


def reject_notice(conn, run, rcpt: str, reason: str, at) -> bool:
    """File the DSN of a reject; whether it was queued (a hosted sender gets it in the
    INBOX, the null sender none)."""
    failure = (rcpt, "5.7.1", f"550 5.7.1 Message rejected by the recipient: {reason}")
    head = run.spool.head(64 * 1024)
    end = head.find(b"\r\n\r\n")
    original = run.received + (head[:end + 4] if end >= 0 else head)
    queued = bounce.return_to_sender(conn, run.sieve.hostname, run.sender, [failure],
                                     original, at, run.queue_id,
                                     sign=run.sieve.signer.signatures)
    return queued is not None
