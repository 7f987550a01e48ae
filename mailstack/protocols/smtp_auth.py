"""SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN, through the shared realm.

Why our own and not Twisted's ``ESMTP.ext_AUTH``: stock Twisted advertises and accepts AUTH
before TLS, lets malformed base64 escape as an uncaught exception, and switches back to
command mode before the login has finished, so pipelined commands race it (TWISTED-NOTES).
Here the exchange holds the session's command queue until the realm answers, and the TLS
rule comes from the one gate every protocol uses (``policy.tls_required``).

No CRAM-MD5 or DIGEST-MD5: they need plaintext-equivalent password storage.
Security: passwords are never logged; failures are recorded and throttled by the realm;
before TLS, AUTH is offered only while the TLS cutover has not passed (538 5.7.11 after);
a PLAIN authzid naming another identity is refused (``sasl_plain``).
"""

from __future__ import annotations

import base64

from twisted.cred.error import UnauthorizedLogin
from zope.interface import Interface

from mailstack import replies
from mailstack.protocols import sasl_plain
from mailstack.realm.checker import TemporaryAuthFailure
from mailstack.realm.credentials import SessionCredentials

MECHANISMS = ("PLAIN", "LOGIN")
_USERNAME = base64.b64encode(b"Username:").decode()
_PASSWORD = base64.b64encode(b"Password:").decode()


class ISMTPSender(Interface):
    """The avatar of an SMTP AUTH login: the ``AccountRef`` of the sender."""


def register_avatar(realm) -> None:
    realm.register(ISMTPSender, lambda account, mind: account)


class Authenticator:
    """Runs one AUTH command on a session; the session waits on the returned Deferred."""

    def __init__(self, portal, tls_requirement, enabled: bool):
        self.portal, self.tls_requirement = portal, tls_requirement
        self.enabled = enabled      # the port's policy says whether it offers AUTH at all

    def offered(self, session) -> bool:
        return self.enabled and (session.tls or self.tls_requirement.allows_plaintext())

    def extension(self, session) -> list[str]:
        return ["AUTH " + " ".join(MECHANISMS)] if self.offered(session) else []

    def auth(self, session, argument: str):
        if not self.enabled:
            return session.refuse(replies.NOT_IMPLEMENTED)
        if session.authenticated_as is not None:
            return session.refuse(replies.AUTH_ALREADY)
        if session.envelope.sender is not None:
            return session.refuse(replies.BAD_SEQUENCE)
        if not self.offered(session):
            session.log.info("AUTH refused: TLS required")
            return session.refuse(replies.ENCRYPTION_REQUIRED)
        mechanism, _, initial = argument.partition(" ")
        mechanism = mechanism.upper()
        if mechanism not in MECHANISMS:
            return session.refuse(replies.AUTH_MECHANISM_UNKNOWN)
        exchange = _Exchange(self, session, mechanism)
        return exchange.start(initial.strip())


class _Exchange:
    """One SASL conversation.

    While a 334 challenge is outstanding the session's queue keeps flowing and the next
    line goes to ``session.continuation``; the realm lookup returns a Deferred that the
    queue waits on, so nothing pipelined behind AUTH runs before its 235 or 535.
    """

    def __init__(self, authenticator, session, mechanism):
        self.authenticator, self.session, self.mechanism = authenticator, session, mechanism
        self.username = None

    def start(self, initial: str):
        if self.mechanism == "PLAIN":
            if initial and initial != "=":
                return self._plain(initial)
            return self._ask("", self._plain)
        if initial:
            return self._login_user(initial)
        return self._ask(_USERNAME, self._login_user)

    def _ask(self, challenge: str, step):
        self.session.transport.write(f"334 {challenge}\r\n".encode())

        def respond(line):
            if line is None:
                return self._finish(replies.LINE_TOO_LONG)
            text = line.decode("ascii", "replace").strip()
            if sasl_plain.cancelled(text):
                return self._finish(replies.AUTH_CANCELLED)
            return step(text)
        self.session.continuation = respond

    def _finish(self, reply):
        if reply.code < 400:
            self.session.reply(reply)
        else:
            self.session.refuse(reply)

    def _plain(self, text: str):
        try:
            user, password = sasl_plain.read_plain(text)
        except sasl_plain.ForeignAuthzid:
            return self._finish(replies.AUTH_FAILED)
        except sasl_plain.Malformed:
            return self._finish(replies.AUTH_MALFORMED)
        return self._login(user, password)

    def _login_user(self, text: str):
        try:
            self.username = sasl_plain.decode(text)
        except sasl_plain.Malformed:
            return self._finish(replies.AUTH_MALFORMED)
        return self._ask(_PASSWORD, self._login_password)

    def _login_password(self, text: str):
        try:
            password = sasl_plain.decode(text)
        except sasl_plain.Malformed:
            return self._finish(replies.AUTH_MALFORMED)
        return self._login(self.username, password)

    def _login(self, user: bytes, password: bytes):
        s = self.session
        credentials = SessionCredentials(user, password, protocol="smtp", client_ip=s.client_ip,
                                         tls=s.tls, mechanism=self.mechanism,
                                         port=s.transport.getHost().port)
        d = self.authenticator.portal.login(credentials, None, ISMTPSender)
        return d.addCallbacks(self._logged_in, self._failed)

    def _logged_in(self, result):
        _interface, account, _logout = result
        if not self.session.ticket.add_user(account.address):
            self.session.log.info("too many connections for {user}", user=account.address)
            return self._finish(replies.TOO_MANY_FOR_ACCOUNT)
        self.session.authenticated_as = account
        self.session.log.info("AUTH {mechanism} as {user}", mechanism=self.mechanism,
                              user=account.address)
        self._finish(replies.AUTH_OK)

    def _failed(self, failure):
        if failure.check(UnauthorizedLogin):
            return self._finish(replies.AUTH_FAILED)
        if not failure.check(TemporaryAuthFailure):
            self.session.log.failure("AUTH failed unexpectedly", failure)
        self._finish(replies.AUTH_TEMPORARY)
