"""A port's policy: runs its stage tables (``mx.py``, ``submission.py``) stage by stage.

Why one runner for both ports: the tables differ, the rules for reading them do not.  What
this adds to the tables is only what a table cannot say: the route is looked up once per
RCPT; the client chain runs at connect and its verdict is delivered at RCPT, after relay,
unless the sender proved who it is; a PERMIT from it skips the traps; a trap hit condemns
the client for the rest of the session (``ClientState``); an unknown user feeds the
directory-harvest watch; every refusal goes through the rejection log (with a ref) --
except the quota refusal after DATA, which is about the mailbox, not the client; on port
25 the message is authenticated (``authentication.py``) and scanned by rspamd
(``spam_scan.py``, with ``[spam] enabled``; submitted mail too with ``[spam] submission``,
its result only for the data table) before the data table runs, and the Stamp and
the scan's result travel to delivery (our Authentication-Results and X-Spam-* headers,
the Junk folder, and each customer's SPAM Blocker: ``spam_lists.screening``).  A relay
check may route the address itself (``forwarding.BounceAddress``:
an SRS address stands for a remote one); a message that fails a DMARC ``p=reject`` and was
let through (a whitelisted client, a trusted ARC forwarder) is stored, never forwarded.

Standards: RFC 5321 §3.3, §4.2; RFC 4954 (the sender an AUTH login proves).
Security: relay is decided before anything else at RCPT and defaults to REJECT (``stages``);
a DNS or store failure is a 4xx, never a 5xx.
"""

from __future__ import annotations

from dataclasses import replace

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import replies
from mailstack.policy import harvest, spam_lists
from mailstack.policy.auth_window import WindowLogin
from mailstack.policy.authentication import delivered
from mailstack.policy.client_facts import ClientFacts
from mailstack.policy.client_state import ClientState
from mailstack.policy.decision import Decision, Verdict, reject
from mailstack.policy.outcome import Accepted, Outcome, Sender, refused
from mailstack.policy.quota import FitsMailbox, without_room
from mailstack.policy.reflector import Reflector
from mailstack.store import routes
from mailstack.store.errors import StoreUnavailable

log = Logger(namespace="mailstack.policy")


class PortPolicy:
    """Implements ``contract.SMTPPolicy`` for one listener."""

    def __init__(self, tables, *, db, resolver, rejections, harvest_watch=None, reports=None,
                 warner=None, hostname: str, postmaster_domain: str, auth_enabled: bool,
                 authenticator=None, spam_scanner=None):
        self.tables, self.db, self.resolver = tables, db, resolver
        self.authenticator = authenticator     # port 25 only: SPF/DKIM/ARC/DMARC
        self.spam_scanner = spam_scanner       # rspamd (spam_scan.py): port 25, submission
        self.rejections, self.harvest, self.reports = rejections, harvest_watch, reports
        self.warner, self.hostname = warner, hostname
        self._postmaster_domain = postmaster_domain
        self.auth_enabled = auth_enabled

    def postmaster_domain(self) -> str:
        return self._postmaster_domain

    # --- connect: firewall before the banner, client checks started ---------------------------

    @defer.inlineCallbacks
    def connect(self, request):
        decision = yield self.tables.connect.run(request)
        if decision.verdict is Verdict.REJECT:
            return Outcome(decision=decision, close=True)
        if decision.verdict is Verdict.DEFER:
            return Outcome(replies.TEMPORARY_CLOSE.format(host=self.hostname), decision,
                           close=True)
        if decision.verdict is Verdict.PERMIT or self.tables.client is None:
            return Outcome(decision=decision, client=ClientState())
        state = ClientState(ClientFacts(self.resolver, request.client_ip))
        verdict = self.tables.client.run(replace(request, client=state))
        state.start(verdict.addErrback(_checks_failed, request))
        return Outcome(decision=decision, client=state)

    # --- MAIL ------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def mail(self, request):
        decision = yield self.tables.mail.run(request)
        if not decision.accepts:
            return refused((yield self.rejections.refuse(request, decision, "mail")), decision)
        if request.authenticated_as is not None:
            return Outcome(decision=decision,
                           sender=Sender(request.authenticated_as, "auth", request.tls))
        window = decision.subject
        if not isinstance(window, WindowLogin):
            return Outcome(decision=decision)
        log.info("{session}: sending as {user} through a {how} window", session=request.session,
                 user=window.account.address, how=decision.check)
        if self.warner is not None:
            yield self.warner.warn(window.account, "sunset", request.client_ip,
                                   "smtp (POP before SMTP)")
        return Outcome(decision=decision, sender=Sender(window.account, decision.check, window.tls))

    # --- RCPT ------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def rcpt(self, request):
        try:
            route = yield self.db.read(routes.route, request.recipient)
        except StoreUnavailable:
            log.warn("{session}: RCPT TO <{rcpt}> deferred: store unavailable",
                     session=request.session, rcpt=request.recipient)
            return refused(replies.STORE_UNAVAILABLE)
        request = replace(request, route=route)
        decision = yield self.tables.relay.run(request)
        if not decision.accepts:
            return refused((yield self.rejections.refuse(request, decision, "rcpt")), decision)
        if isinstance(decision.subject, routes.Route):   # the address routed by its check
            request = replace(request, route=decision.subject)      # (an SRS bounce address)
        verdict = yield self._client_verdict(request)
        if not verdict.accepts:
            log.info("{session}: client refused by {check}: {why}", session=request.session,
                     check=verdict.check, why=verdict.reason)
            return refused((yield self.rejections.refuse(request, verdict, "connect")), verdict)
        if verdict.verdict is not Verdict.PERMIT and self._checked(request):
            trapped = yield self.tables.trap.run(request)
            if trapped.verdict is Verdict.DISCARD:
                log.warn("{session}: {why}: client blocked, message will be discarded",
                         session=request.session, why=trapped.reason)
                request.client.condemn(_blocked_now(request, trapped.reason))
                return Outcome(decision=trapped, accepted=Accepted(request.recipient, discard=True))
        return (yield self._recipient(request, verdict))

    @defer.inlineCallbacks
    def _recipient(self, request, verdict):
        decision = yield self.tables.rcpt.run(request)
        if not decision.accepts:
            if decision.check == "recipients-per-hour":
                log.warn("{session}: containment: {why}", session=request.session,
                         why=decision.reason)
            reply = yield self.rejections.refuse(request, decision, "rcpt")
            if (decision.check == harvest.UNKNOWN_USER_CHECK and self._checked(request)
                    and verdict.verdict is not Verdict.PERMIT and self.harvest is not None):
                yield self.harvest.after_unknown_user(request)
            return refused(reply, decision)
        address, route = request.recipient, request.route
        if decision.check == Reflector.name:
            return Outcome(decision=decision, accepted=Accepted(address, discard=True, reflect=True))
        found = route.recipients
        return Outcome(decision=decision, accepted=Accepted(
            address, found.account_ids, remote=not route.hosted, room=route.room,
            forward=found.forward, spam_blocker=found.spam_blocker, spam_lists=found.spam_lists,
            sieve=found.sieve))

    def _checked(self, request) -> bool:
        """Whether the client's verdict applies: not to a proven sender, not where the port
        runs no client checks (trusted networks, submission)."""
        client = request.client
        return (request.authenticated_as is None and client is not None and client.checked)

    def _client_verdict(self, request):
        if not self._checked(request):
            return defer.succeed(Decision(Verdict.DUNNO))
        return request.client.verdict()

    # --- DATA ------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def data(self, request):
        stamp = yield self._authenticated(request)
        request = replace(request, authentication=stamp)
        if self.spam_scanner is not None and self.spam_scanner.applies(request):
            request = replace(request, spam=(yield self.spam_scanner.scan(request)))
        decision = yield self.tables.data.run(request)
        if not decision.accepts:
            if decision.check == FitsMailbox.name:     # the mailbox's, not the sender's
                return refused(decision.reply, decision)
            first = next((r.address for r in request.recipients), None)
            reply = yield self.rejections.refuse(replace(request, recipient=first), decision,
                                                 "data")
            return refused(reply, decision)
        forward = stamp is None or not stamp.rejected
        if not forward and any(r.forward for r in request.recipients):
            log.info("{session}: not forwarded: it fails the DMARC p=reject of {domain}",
                     session=request.session, domain=stamp.dmarc.domain)
        if stamp is not None:
            stamp = delivered(stamp, self.authenticator.authserv_id)
            log.info("{session}: {results}", session=request.session,
                     results=_summary(stamp, decision))
        if request.spam is not None:
            log.info("{session}: {spam}", session=request.session, spam=request.spam.summary())
        marked = request.spam is not None and self.spam_scanner.marks
        return Outcome(decision=decision, authentication=stamp, forward=forward,
                       spam=spam_lists.screening(request) if marked else None,
                       undeliverable=tuple(without_room(request.recipients, request.size or 0)))

    def _authenticated(self, request):
        """The message's authentication Stamp (port 25, senders that did not log in), or
        None; a failure of the checks themselves is logged and the message goes on
        unstamped (a bug must not refuse mail)."""
        if (self.authenticator is None or request.message is None
                or request.authenticated_as is not None):
            return defer.succeed(None)
        d = self.authenticator.verify(request)
        d.addErrback(_verification_failed, request)
        return d

    def refused_by_recipient(self, request, reply) -> defer.Deferred:
        """The reply (with its ref) for a message its one recipient's Sieve script rejected
        at the end of DATA (RFC 5429 §2.1): in the rejection log like every refusal, so
        ``mailstack rejections``, ``why`` and ``explain`` find it."""
        decision = Decision(Verdict.REJECT, "sieve", "the recipient's Sieve script rejected it",
                            reply)
        first = next((r.address for r in request.recipients), None)
        return self.rejections.refuse(replace(request, recipient=first), decision, "data")

    def after_delivery(self, request, spool):
        if self.reports is None:
            return defer.succeed(None)
        return self.reports.take(request, spool)


def _verification_failed(failure, request):
    log.failure("{session}: message authentication failed", failure, session=request.session)
    return None


def _summary(stamp, decision) -> str:
    dkim = ",".join(d.result for d in stamp.dkim)
    text = (f"spf={stamp.spf.result} helo={stamp.spf_helo.result} dkim={dkim} "
            f"arc={stamp.arc.result} dmarc={stamp.dmarc.result}")
    if stamp.dmarc.result == "fail":
        text += f" ({stamp.dmarc.domain} p={stamp.dmarc.policy}, done: {stamp.dmarc.applied})"
    if stamp.junk:
        text += ": to Junk"
    if stamp.stripped:
        text += f"; {stamp.stripped} forged Authentication-Results removed"
    return text


def _checks_failed(failure, request):
    log.failure("{session}: client checks failed", failure, session=request.session)
    return Decision(Verdict.DEFER, "client", "checks failed", replies.STORE_UNAVAILABLE)


def _blocked_now(request, reason):
    return reject("blocklist", f"trap: {reason}",
                  replies.LOCALLY_BLOCKED.format(ip=request.client_ip, reason=reason))
