"""Where a message the policy accepted goes: the router stores it, the reflector answers.

Why a module of its own: ``smtp_data`` reads the message and answers for it; the policy
(``policy.port_policy``) decides; this is the part of both ports that acts on the
decision -- the Received header's facts gathered from the session, the copies and queue
entries committed in one transaction (``delivery.routing``), a bounce filed for the
recipients the message did not fit, and the settings check answered into the sender's own
INBOX (``policy.reflector`` says what to write).  It decides nothing.

Standards: RFC 5321 §4.4 (trace), §6.1 (reliable delivery), RFC 3848 (``with`` keywords).
Security: facts the client chose (HELO, PTR) are cleaned by ``delivery.routing``; the
reflector answers only an identified sender, into their own mailbox.
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack import clock as clocks, replies
from mailstack.delivery.routing import TraceFacts
from mailstack.policy import reflector
from mailstack.protocols import starttls
from mailstack.store import mailboxes


class MessageIntake:
    def __init__(self, router, db, clock, reflector_local_part: str):
        self.router, self.db, self.clock = router, db, clock
        self.reflector = reflector.Reflector(reflector_local_part)

    @defer.inlineCallbacks
    def store(self, session, envelope, spool, queue_id, undeliverable=(), authentication=None,
              forward=True, spam=None):
        """Store the message in ``spool`` for the accepted recipients that keep a copy;
        ``undeliverable`` (the policy's: no room) get a bounce in the same transaction;
        ``authentication`` (port 25's Stamp) adds our Authentication-Results header to
        the local copies and files them in Junk on a DMARC quarantine; ``forward`` False:
        the policy keeps the message from leaving (no forwarded copy); ``spam`` (port 25's
        rspamd scan, a ``spam_filing.Screening``) adds the X-Spam-* fields after
        Authentication-Results, and each account's SPAM Blocker files its copy."""
        kept = [r for r in envelope.recipients if not r.discard]
        if not kept:
            return None
        reply = replies.MESSAGE_OVER_QUOTA
        result = yield self.router.store(
            envelope.sender, [r for r in kept if r not in undeliverable], spool,
            trace(session, envelope, queue_id), account=envelope.account, tls=session.tls,
            undeliverable=[(r.address, reply.status, str(reply)) for r in undeliverable],
            auth_header=(authentication.header if authentication is not None else b"")
            + (spam.header if spam is not None else b""),
            junk=authentication is not None and authentication.junk, forward=forward,
            screening=spam)
        for r in undeliverable:
            session.log.info("<{rcpt}>: mailbox full, bounced to the sender", rcpt=r.address)
        return result

    def reflect(self, session, envelope):
        """Answer the settings check into the sender's own INBOX, when it was asked for."""
        if not any(r.reflect for r in envelope.recipients):
            return defer.succeed(None)
        identity = envelope.identity
        arrival = reflector.Arrival(
            account=identity.account.address, port=session.factory.name,
            port_number=session.transport.getHost().port,
            tls_version=starttls.tls_version(session.transport), method=identity.method,
            password_tls=identity.password_tls)
        at = clocks.now(self.clock)
        session.log.info("settings check for {user}: {fixes}", user=arrival.account,
                         fixes="; ".join(self.reflector.verdict(arrival)) or "ready")
        return self.db.run(mailboxes.deliver, [identity.account.id],
                           self.reflector.report(arrival, session.hostname, at), at)


def trace(session, envelope, queue_id) -> TraceFacts:
    """What the Received header records about this hop."""
    account = envelope.account
    client = session.client_state
    return TraceFacts(
        helo=session.helo or "unknown", client_ip=session.client_ip,
        client_name=client.verified_name if client is not None else None,
        hostname=session.hostname, protocol=with_keyword(session), queue_id=queue_id,
        tls_version=starttls.tls_version(session.transport),
        recipient=envelope.addresses[0] if len(envelope.addresses) == 1 else None,
        account=account.address if account is not None else None, method=envelope.method,
        port=session.transport.getHost().port)


def with_keyword(session) -> str:
    """The RFC 3848 "with" keyword for the Received header."""
    if not session.esmtp:
        return "SMTP"
    return "ESMTP" + ("S" if session.tls else "") + ("A" if session.authenticated_as else "")
