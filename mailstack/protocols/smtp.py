"""Port 25: the inbound MX for the domains we host, behind the ISP's anti-spam policy.

Why a policy object and not a subclass: the MX and submission speak the same ESMTP
(``esmtp.SMTPSession``) but differ in what they allow.  On the MX a recipient must be in a
domain we host and must exist; relaying happens only for an authenticated customer, and
only where ``smtp.mx_relay = "authenticated"`` (off by default).  Submission
(``submission.py``) derives from this policy, adds the login requirement and skips the
anti-spam checks (roaming customers on a listed network must still be able to send).

Order (docs/policy.md): at connect, firewalled addresses are dropped before the banner and
the client checks start (trusted/whitelist → local blocks → DNSBL → reverse DNS); their
verdict is delivered at each RCPT, after the relay check, so the rejection log carries
From and To.  Then spam traps, the recipients-per-hour brake, and unknown users (which
feed the directory-harvest firewall).  Every refusal goes through the rejection log.

Standards: RFC 5321 (MX role), RFC 5598 §4.3.1.
Security: no relaying for anyone unauthenticated; whitelist entries never open relay.
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack import clock as clocks, replies
from mailstack.delivery.routing import Accepted, MessageRouter, TraceFacts
from mailstack.policy import (
    auth_window, blocklist, complaints, containment, dnsbl, harvest, op25b, rdns, recipients,
    reflector, relay,
    sender_rules, spamtrap, whitelist,
)
from mailstack.policy.chains import Chain
from mailstack.policy.client_facts import ClientFacts
from mailstack.policy.decision import Verdict
from mailstack.policy.rejection_log import RejectionLog
from mailstack.policy.request import SMTPRequest
from mailstack.protocols import smtp_auth, starttls
from mailstack.protocols.esmtp import SMTPFactory
from mailstack.store import blocks, directory, mailboxes
from mailstack.store.errors import StoreUnavailable


class InboundPolicy:
    """What the MX accepts: mail for our own accounts and aliases, from clean clients."""

    antispam = True

    def __init__(self, parts, auth_enabled: bool | None = None):
        config = parts.config
        if auth_enabled is None:
            auth_enabled = config.submission.smtp_auth and config.smtp.mx_relay == "authenticated"
        self.parts, self.db, self.clock = parts, parts.db, parts.clock
        self.authenticator = smtp_auth.Authenticator(parts, auth_enabled)
        self.router = MessageRouter(parts)
        self.rejections = RejectionLog(parts.db, parts.clock)
        settings = config.antispam
        self.settings = settings
        self.blocker = blocklist.Blocker(settings)
        self.whitelist = whitelist.Whitelisted(parts.db, settings.trusted_networks)
        client_checks = [self.whitelist, blocklist.LocallyBlocked(parts.db, parts.clock),
                         dnsbl.Listed(parts.resolver, settings.dnsbl, parts.clock,
                                      tempfail=settings.dnsbl_tempfail)]
        if settings.require_ptr:
            client_checks.append(rdns.HasReverseDNS(settings.forward_confirmed_ptr))
        self.client_chain = Chain("client", client_checks)
        self.sender_chain = Chain("mail", self.sender_checks())
        self.relay_chain = Chain("relay", self.relay_checks())
        self.trap_chain = Chain("trap", [spamtrap.SpamTrap(parts.db, parts.clock,
                                                           settings.spam_traps, self.blocker)])
        self.reflector = reflector.Reflector(config.migration.reflector_local_part)
        self.rcpt_chain = Chain("rcpt", [
            containment.RecipientsPerHour(parts.db, parts.clock,
                                          config.submission.recipients_per_hour),
            self.reflector, recipients.LocalRecipientExists()])
        self.harvest = harvest.HarvestWatch(parts.db, parts.clock, settings, self.blocker)
        hosted = config.domains.hosted
        self._postmaster_domain = hosted[0] if hosted else config.server.hostname

    def sender_checks(self):
        """On the MX: customers on our own networks may still relay through a login window
        until OP25B blocks them; everyone else is simply an MX client."""
        config = self.parts.config
        customers = op25b.Phases(config.migration)
        window = auth_window.PopBeforeSMTP(self.db, self.clock, config.pop_before_smtp,
                                           config.submission.help_url, required=False,
                                           applies_to=customers.is_customer)
        return [window, sender_rules.OwnAddressesOnly(self.db)]

    def relay_checks(self):
        config = self.parts.config
        return [op25b.OutboundPort25Blocked(config.migration, self.clock,
                                            config.submission.help_url),
                relay.HostedDomainsOnly()]

    def extensions(self, session):
        return self.authenticator.extension(session)

    def auth(self, session, argument):
        return self.authenticator.auth(session, argument)

    def postmaster_domain(self) -> str:
        return self._postmaster_domain

    def request(self, session, stage, **facts) -> SMTPRequest:
        return SMTPRequest(stage=stage, session=session.session_id, client_ip=session.client_ip,
                           port=session.factory.name, tls=session.tls, helo=session.helo,
                           client=getattr(session, "client", None), **facts)

    # --- connect: firewall before the banner, client checks started ----------------------

    @defer.inlineCallbacks
    def on_connect(self, session):
        session.client = None
        session.client_verdict = None
        if not self.antispam or self.whitelist.is_trusted(session.client_ip):
            return True
        session.client = ClientFacts(self.parts.resolver, session.client_ip)
        request = self.request(session, "connect")
        try:
            found = yield self.db.read(blocks.active_for, session.client_ip, clocks.now(self.clock))
        except StoreUnavailable:
            found = []   # fail open here; the client checks will defer
        if any(b.action == "firewall" for b in found):
            listed = yield self.whitelist.check(request)
            if listed.verdict is not Verdict.PERMIT:
                return False
        session.client_verdict = self.client_chain.run(request)
        session.client_verdict.addErrback(_checks_failed, session)
        return True

    # --- MAIL -------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def check_sender(self, session, sender):
        """The rejection reply, or None; on success the envelope knows who sends."""
        request = self.request(session, "mail", sender=sender,
                               authenticated_as=session.authenticated_as)
        decision = yield self.sender_chain.run(request)
        if not decision.accepts:
            return (yield self.rejections.refuse(request, decision, "mail"))
        if session.authenticated_as is not None:
            session.envelope.account, session.envelope.method = session.authenticated_as, "auth"
        elif decision.subject is not None:
            window = decision.subject
            session.envelope.account, session.envelope.method = window.account, decision.check
            session.password_tls = window.tls
            session.log.info("sending as {user} through a {how} window",
                             user=window.account.address, how=decision.check)
            if self.parts.warner is not None:
                yield self.parts.warner.warn(window.account, "sunset", session.client_ip,
                                             "smtp (POP before SMTP)")
        return None

    # --- RCPT -------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def check_recipient(self, session, address):
        """(rejection reply or None, the ``Accepted`` recipient or None when discarded)."""
        route = yield self.db.read(directory.route, address)
        envelope = session.envelope
        request = self.request(session, "rcpt", sender=envelope.sender, recipient=address,
                               route=route, authenticated_as=envelope.account,
                               declared_size=envelope.declared_size,
                               extra={"accepted": len(envelope.recipients)})
        decision = yield self.relay_chain.run(request)
        if not decision.accepts:
            return (yield self.rejections.refuse(request, decision, "rcpt")), None
        exempt = envelope.account is not None or session.client_verdict is None
        if not exempt:
            verdict = yield self._client_verdict(session)
            if not verdict.accepts:
                session.log.info("client refused by {check}: {why}", check=verdict.check,
                                 why=verdict.reason)
                return (yield self.rejections.refuse(request, verdict, "connect")), None
            if verdict.verdict is not Verdict.PERMIT:   # whitelisted clients skip the traps
                trapped = yield self.trap_chain.run(request)
                if trapped.verdict is Verdict.DISCARD:
                    session.log.warn("{why}: client blocked, message will be discarded",
                                     why=trapped.reason)
                    session.client_verdict = defer.succeed(
                        _blocked_now(request, trapped.reason))
                    return None, Accepted(address, discard=True)
        decision = yield self.rcpt_chain.run(request)
        if not decision.accepts:
            if decision.check == "recipients-per-hour":
                session.log.warn("containment: {why}", why=decision.reason)
            reply = yield self.rejections.refuse(request, decision, "rcpt")
            if decision.check == harvest.UNKNOWN_USER_CHECK and not exempt:
                verdict = yield self._client_verdict(session)
                if verdict.verdict is not Verdict.PERMIT:
                    yield self.harvest.after_unknown_user(request)
            return reply, None
        if decision.check == self.reflector.name:
            return None, Accepted(address, discard=True, reflect=True)
        return None, Accepted(address, route.recipients.account_ids, remote=not route.hosted,
                              room=route.room)

    def _client_verdict(self, session):
        d = defer.Deferred()
        session.client_verdict.addCallback(lambda v: (d.callback(v), v)[1])
        return d

    # --- DATA -------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def deliver(self, session, envelope, spool, queue_id):
        """Store the message in ``spool`` (message/spool.py) for the accepted recipients;
        the caller closes the spool once this has fired."""
        account = envelope.account
        client = getattr(session, "client", None)
        trace = TraceFacts(
            helo=session.helo or "unknown", client_ip=session.client_ip,
            client_name=client.verified_name if client is not None else None,
            hostname=session.hostname, protocol=_with(session), queue_id=queue_id,
            tls_version=starttls.tls_version(session.transport),
            recipient=envelope.addresses[0] if len(envelope.addresses) == 1 else None,
            account=account.address if account is not None else None, method=envelope.method,
            port=session.transport.getHost().port)
        kept = [r for r in envelope.recipients if not r.discard]
        full = [r for r in kept if r.room is not None and spool.size > r.room]
        if full and len(full) == len(kept):
            raise replies.Refused(replies.MESSAGE_OVER_QUOTA)
        # Some fit, some not: one reply speaks for all recipients (no LMTP here), so the
        # ones with room get the message and the sender a bounce for the rest -- refusing all
        # would make the sender's retry duplicate the copies for the others.
        result = None
        if kept:
            reply = replies.MESSAGE_OVER_QUOTA
            result = yield self.router.store(
                envelope.sender, [r for r in kept if r not in full], spool, trace,
                account=account, tls=session.tls,
                undeliverable=[(r.address, reply.status, str(reply)) for r in full])
            for r in full:
                session.log.info("<{rcpt}>: mailbox full, bounced to the sender", rcpt=r.address)
        yield self._take_report(session, envelope, spool)
        if any(r.reflect for r in envelope.recipients):
            yield self._reflect(session, envelope)
        return result

    def _reflect(self, session, envelope):
        """Answer the settings check into the sender's own INBOX."""
        arrival = reflector.Arrival(
            account=envelope.account.address, port=session.factory.name,
            port_number=session.transport.getHost().port,
            tls_version=starttls.tls_version(session.transport), method=envelope.method,
            password_tls=session.password_tls)
        at = clocks.now(self.clock)
        session.log.info("settings check for {user}: {fixes}", user=arrival.account,
                         fixes="; ".join(self.reflector.verdict(arrival)) or "ready")
        return self.db.run(mailboxes.deliver, [envelope.account.id],
                           self.reflector.report(arrival, session.hostname, at), at)

    @defer.inlineCallbacks
    def _take_report(self, session, envelope, spool):
        """Spam forwarded to the report address becomes a complaint against its source."""
        report = self.settings.report_address
        if not report or report not in envelope.addresses:
            return
        reporter = envelope.account.address if envelope.account else envelope.sender
        result = yield self.db.run(_report_from_spool, spool, clocks.now(self.clock),
                                   reporter or "unknown", session.hostname, self.settings,
                                   self.blocker)
        if result is None:
            session.log.info("report from {who}: no originating IP found", who=reporter)
        else:
            ip, count, block = result
            session.log.info("report from {who}: complaint against {ip} ({n} in window){b}",
                             who=reporter, ip=ip, n=count, b=" → blocked" if block else "")


REPORT_LIMIT = 1024 * 1024   # octets of a forwarded spam read for its Received headers


def _report_from_spool(conn, spool, *args):
    """complaints.from_report over the start of the report (a store function): the
    forwarded spam's headers are near its top, and a large attachment need not be read."""
    return complaints.from_report(conn, spool.head(REPORT_LIMIT), *args)


def _checks_failed(failure, session):
    from mailstack import replies
    from mailstack.policy.decision import Decision
    session.log.failure("client checks failed", failure)
    return Decision(Verdict.DEFER, "client", "checks failed", replies.STORE_UNAVAILABLE)


def _blocked_now(request, reason):
    from mailstack import replies
    from mailstack.policy.decision import reject
    return reject("blocklist", f"trap: {reason}",
                  replies.LOCALLY_BLOCKED.format(ip=request.client_ip, reason=reason))


def _with(session) -> str:
    """The RFC 3848 "with" keyword for the Received header."""
    if not session.esmtp:
        return "SMTP"
    return "ESMTP" + ("S" if session.tls else "") + ("A" if session.authenticated_as else "")


def register_avatars(parts) -> None:
    smtp_auth.register_avatar(parts.realm)


def build_factory(parts, listener):
    return SMTPFactory(parts, listener, InboundPolicy(parts))
