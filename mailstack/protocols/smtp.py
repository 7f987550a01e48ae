"""Port 25: the inbound MX for the domains we host.

Why a policy object and not a subclass: the MX and submission speak the same ESMTP
(``esmtp.SMTPSession``) but differ in what they allow.  On the MX a recipient must be in a
domain we host and must exist; relaying happens only for an authenticated customer, and
only where ``smtp.mx_relay = "authenticated"`` (off by default).  Submission
(``submission.py``) derives from this policy and adds the login requirements.

Standards: RFC 5321 (MX role), RFC 5598 §4.3.1.
Security: no relaying for anyone unauthenticated; every refusal is logged with its reply.
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack.delivery.routing import Accepted, MessageRouter, TraceFacts
from mailstack.policy import containment, recipients, relay, sender_rules
from mailstack.policy.chains import Chain
from mailstack.policy.request import SMTPRequest
from mailstack.protocols import smtp_auth, starttls
from mailstack.protocols.esmtp import SMTPFactory
from mailstack.store import directory


class InboundPolicy:
    """What the MX accepts: mail for our own accounts and aliases, from anyone."""

    def __init__(self, parts, auth_enabled: bool | None = None):
        config = parts.config
        if auth_enabled is None:
            auth_enabled = config.submission.smtp_auth and config.smtp.mx_relay == "authenticated"
        self.parts = parts
        self.authenticator = smtp_auth.Authenticator(parts, auth_enabled)
        self.router = MessageRouter(parts)
        self.sender_chain = Chain("mail", self.sender_checks())
        self.rcpt_chain = Chain("rcpt", [
            relay.HostedDomainsOnly(),
            containment.RecipientsPerHour(parts.db, parts.clock,
                                          config.submission.recipients_per_hour),
            recipients.LocalRecipientExists()])
        hosted = config.domains.hosted
        self._postmaster_domain = hosted[0] if hosted else config.server.hostname

    def sender_checks(self):
        return [sender_rules.OwnAddressesOnly(self.parts.db)]

    def extensions(self, session):
        return self.authenticator.extension(session)

    def auth(self, session, argument):
        return self.authenticator.auth(session, argument)

    def postmaster_domain(self) -> str:
        return self._postmaster_domain

    def request(self, session, stage, **facts) -> SMTPRequest:
        return SMTPRequest(stage=stage, session=session.session_id, client_ip=session.client_ip,
                           port=session.factory.name, tls=session.tls, helo=session.helo,
                           **facts)

    @defer.inlineCallbacks
    def check_sender(self, session, sender):
        """The rejection reply, or None; on success the envelope knows who sends."""
        request = self.request(session, "mail", sender=sender,
                               authenticated_as=session.authenticated_as)
        decision = yield self.sender_chain.run(request)
        if not decision.accepts:
            return decision.reply
        if session.authenticated_as is not None:
            session.envelope.account, session.envelope.method = session.authenticated_as, "auth"
        elif decision.subject is not None:
            session.envelope.account, session.envelope.method = decision.subject, decision.check
            session.log.info("sending as {user} through a {how} window", user=decision.subject.address,
                             how=decision.check)
        return None

    @defer.inlineCallbacks
    def check_recipient(self, session, address):
        """(rejection reply or None, the ``Accepted`` recipient)."""
        route = yield self.parts.db.read(directory.route, address)
        request = self.request(session, "rcpt", sender=session.envelope.sender,
                               recipient=address, route=route,
                               authenticated_as=session.envelope.account,
                               extra={"accepted": len(session.envelope.recipients)})
        decision = yield self.rcpt_chain.run(request)
        if not decision.accepts:
            if decision.check == "recipients-per-hour":
                session.log.warn("containment: {why}", why=decision.reason)
            return decision.reply, None
        return None, Accepted(address, route.recipients.account_ids, remote=not route.hosted)

    def deliver(self, session, envelope, body, queue_id):
        account = envelope.account
        trace = TraceFacts(
            helo=session.helo or "unknown", client_ip=session.client_ip, client_name=None,
            hostname=session.hostname, protocol=_with(session), queue_id=queue_id,
            tls_version=starttls.tls_version(session.transport),
            recipient=envelope.addresses[0] if len(envelope.addresses) == 1 else None,
            account=account.address if account is not None else None, method=envelope.method)
        return self.router.store(envelope.sender, envelope.recipients, body, trace,
                                 account=account, tls=session.tls)


def _with(session) -> str:
    """The RFC 3848 "with" keyword for the Received header."""
    if not session.esmtp:
        return "SMTP"
    return "ESMTP" + ("S" if session.tls else "") + ("A" if session.authenticated_as else "")


def register_avatars(parts) -> None:
    smtp_auth.register_avatar(parts.realm)


def build_factory(parts, listener):
    return SMTPFactory(parts, listener, InboundPolicy(parts))
