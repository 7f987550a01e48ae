"""Port 25: the inbound MX for the domains we host.

Why a policy object and not a subclass: the MX and submission speak the same ESMTP
(``esmtp.SMTPSession``) but differ in what they allow.  Here a recipient must be in a
domain we host and must exist (no relay for anyone, authenticated or not: there is no AUTH
on the MX), and an accepted message goes straight into the recipients' INBOXes.  The
anti-spam chains of a later issue plug in at ``check_sender`` / ``check_recipient``.

Standards: RFC 5321 (MX role), RFC 5598 §4.3.1.
Security: no AUTH and no relaying on this port; every refusal is logged with its reply.
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack import replies
from mailstack.delivery.local import LocalDelivery, TraceFacts
from mailstack.policy import recipients, relay
from mailstack.policy.chains import Chain
from mailstack.policy.request import SMTPRequest
from mailstack.protocols import starttls
from mailstack.protocols.esmtp import SMTPFactory
from mailstack.store import directory


class InboundPolicy:
    """What the MX accepts: mail for our own accounts and aliases, from anyone."""

    def __init__(self, parts):
        self.parts = parts
        self.delivery = LocalDelivery(parts.db, parts.clock)
        self.rcpt_chain = Chain("mx-rcpt", [relay.HostedDomainsOnly(),
                                            recipients.LocalRecipientExists()])
        hosted = parts.config.domains.hosted
        self._postmaster_domain = hosted[0] if hosted else parts.config.server.hostname

    def extensions(self, session):
        return []

    def auth(self, session, argument):
        session.refuse(replies.NOT_IMPLEMENTED)

    def postmaster_domain(self) -> str:
        return self._postmaster_domain

    def check_sender(self, session, sender):
        return None

    def request(self, session, stage, **facts) -> SMTPRequest:
        return SMTPRequest(stage=stage, session=session.session_id, client_ip=session.client_ip,
                           port=session.factory.name, tls=session.tls, helo=session.helo,
                           sender=session.envelope.sender, **facts)

    @defer.inlineCallbacks
    def check_recipient(self, session, address):
        """(rejection reply or None, the account ids to deliver to)."""
        route = yield self.parts.db.read(directory.route, address)
        request = self.request(session, "rcpt", recipient=address, route=route)
        decision = yield self.rcpt_chain.run(request)
        if not decision.accepts:
            return decision.reply, None
        return None, route.recipients.account_ids

    def deliver(self, session, envelope, body, queue_id):
        account_ids = [i for ids in envelope.recipients for i in ids]
        trace = TraceFacts(
            helo=session.helo or "unknown", client_ip=session.client_ip, client_name=None,
            hostname=session.hostname, protocol=_with(session), queue_id=queue_id,
            tls_version=starttls.tls_version(session.transport),
            recipient=envelope.addresses[0] if len(envelope.addresses) == 1 else None)
        return self.delivery.deliver(account_ids, body, trace)


def _with(session) -> str:
    """The RFC 3848 "with" keyword for the Received header."""
    if not session.esmtp:
        return "SMTP"
    return "ESMTP" + ("S" if session.tls else "") + ("A" if session.authenticated_as else "")


def register_avatars(parts) -> None:
    """The MX logs nobody in."""


def build_factory(parts, listener):
    return SMTPFactory(parts, listener, InboundPolicy(parts))
