"""POP3's AUTHORIZATION state: STLS, USER/PASS and AUTH PLAIN (RFC 1939 §4, §7; RFC 2595;
RFC 5034).

Why a module of its own: the session (``pop3``) reads lines and dispatches them by state;
this is everything before the maildrop is open -- when a password may be sent at all, the
TLS upgrade, the two ways to send one, and the login that takes the maildrop's lease.
``POP3Session`` mixes it in, as the IMAP session mixes in ``imap_login``.  No APOP: it
needs the password stored in plaintext-equivalent form.

Standards: RFC 1939 §7 (USER, PASS), RFC 2595 §4 (STLS), RFC 5034 (AUTH PLAIN),
RFC 4616 (PLAIN), RFC 2449 ([IN-USE]), RFC 3206 ([AUTH], [SYS/TEMP]).
Security: after STLS, pipelined input is dropped and the session starts over; USER, PASS
and AUTH are refused without TLS once the cutover has passed (the one gate,
``policy.tls_required``); failures are throttled by the realm; a PLAIN authzid naming
another identity is refused; passwords are never logged.
"""

from __future__ import annotations

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from zope.interface import Interface

from mailstack import replies
from mailstack.protocols import sasl_plain, starttls
from mailstack.protocols.pop3_read_ahead import ReadAhead
from mailstack.realm.checker import TemporaryAuthFailure
from mailstack.realm.credentials import SessionCredentials
from mailstack.store import maildrop
from mailstack.store.errors import Conflict


class IPOP3User(Interface):
    """The avatar of a POP3 login: the ``AccountRef``."""


class AuthorizationCommands:
    """The commands of the AUTHORIZATION state, and the login they end in."""

    def password_allowed(self) -> bool:
        return self.tls or self.factory.tls_requirement.allows_plaintext()

    def stls_offered(self) -> bool:
        return starttls.offered(self.factory.listener, self.transport, self.factory.tls_options)

    def auth_STLS(self, argument):
        if self.tls:
            return self.err(replies.POP_TLS_ALREADY)
        if not self.stls_offered():
            return self.err(replies.POP_BAD_COMMAND)
        self.ok("Begin TLS negotiation")
        self.log.info("STLS")
        starttls.begin_tls(self, self.factory.tls_options)

    def auth_APOP(self, argument):
        self.err(replies.POP_NO_APOP)

    def auth_USER(self, argument):
        if not self.password_allowed():
            self.log.info("USER refused: TLS required")
            return self.err(replies.POP_TLS_REQUIRED)
        if not argument:
            return self.err(replies.POP_BAD_ARGUMENT)
        self.user = argument
        self.ok("send PASS")

    def auth_PASS(self, argument):
        if not self.password_allowed():
            return self.err(replies.POP_TLS_REQUIRED)
        if self.user is None:
            return self.err(replies.POP_NEED_USER)
        user, self.user = self.user, None
        return self._login(user.encode("utf-8"), argument.encode("utf-8"), "USER")

    def auth_AUTH(self, argument):
        if not argument:
            return self.multiline("SASL mechanisms follow",
                                  ["PLAIN"] if self.password_allowed() else [])
        mechanism, _, initial = argument.partition(" ")
        if mechanism.upper() != "PLAIN":
            return self.err(replies.POP_UNKNOWN_MECHANISM)
        if not self.password_allowed():
            return self.err(replies.POP_TLS_REQUIRED)
        if initial and initial != "=":
            return self._sasl_plain(initial.encode("ascii", "replace"))
        self.transport.write(b"+ \r\n")
        self.continuation = self._sasl_plain

    def _sasl_plain(self, response: bytes):
        if sasl_plain.cancelled(response):
            return self.err(replies.POP_AUTH_CANCELLED)
        try:
            user, password = sasl_plain.read_plain(response)
        except sasl_plain.ForeignAuthzid:
            return self.err(replies.POP_AUTH_FAILED)
        except sasl_plain.Malformed:
            return self.err(replies.POP_BAD_BASE64)
        return self._login(user, password, "PLAIN")

    @defer.inlineCallbacks
    def _login(self, user: bytes, password: bytes, mechanism: str):
        credentials = SessionCredentials(user, password, protocol="pop3", client_ip=self.client_ip,
                                         tls=self.tls, mechanism=mechanism,
                                         port=self.transport.getHost().port)
        try:
            _iface, account, _logout = yield self.portal.login(credentials, None, IPOP3User)
        except UnauthorizedLogin:
            return self.err(replies.POP_AUTH_FAILED)
        except TemporaryAuthFailure:
            return self.err(replies.POP_SYS_TEMP)
        if not self.ticket.add_user(account.address):
            self.log.info("too many connections for {user}", user=account.address)
            return self.err(replies.POP_TOO_MANY_FOR_ACCOUNT)
        try:
            drop = yield self.lease.take(account.id)
        except (maildrop.InUse, Conflict):
            self.log.info("maildrop of {user} in use", user=account.address)
            return self.err(replies.POP_IN_USE)
        if self.transport.disconnecting:
            self.lease.release()
            return None
        self.account, self.drop = account, drop
        self.read_ahead = ReadAhead(self.db, account.id)
        self.login_deadline.cancel()
        self.log.info("maildrop of {user} open: {n} messages", user=account.address, n=len(drop))
        self.ok(f"{account.address} has {len(drop)} messages")
