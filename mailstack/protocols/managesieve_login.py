"""ManageSieve's STARTTLS, AUTHENTICATE "PLAIN" and UNAUTHENTICATE (RFC 5804 §2.1, §2.2,
§2.14.1).

Why a module of its own: this is where passwords arrive, so the rules for them live
together, as in ``imap_login`` and ``pop3_login``: no AUTHENTICATE without TLS after the
cutover (``NO (ENCRYPT-NEEDED)``, the one gate ``policy.tls_required``), failures recorded
(protocol ``sieve``) and throttled by the realm, STARTTLS forgetting everything
pipelined before the handshake and sending the capabilities again under TLS.

Standards: RFC 5804 §2.1 (the SASL exchange: challenges and responses are strings, "*"
cancels), §2.2, §2.14.1; RFC 4616 (PLAIN).
Security: passwords are never logged; a PLAIN authzid naming another identity is refused
(``sasl_plain``); a SASL response is a string bounded by the session's small-literal
limit.
"""

from __future__ import annotations

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from zope.interface import Interface

from mailstack import replies
from mailstack.protocols import sasl_plain, starttls
from mailstack.protocols.managesieve_grammar import GrammarError, read_string, string
from mailstack.protocols.managesieve_scripts import Refused
from mailstack.realm.checker import TemporaryAuthFailure
from mailstack.realm.credentials import SessionCredentials


class ISieveUser(Interface):
    """The avatar of a ManageSieve login: the ``AccountRef``."""


class LoginCommands:
    """Mixin of the session: its transport, factory, portal, ticket and log."""

    def password_allowed(self) -> bool:
        return self.tls or self.factory.tls_requirement.allows_plaintext()

    async def cmd_STARTTLS(self):
        if self.tls:
            raise Refused(replies.SIEVE_TLS_ALREADY)
        if not starttls.offered(self.factory.listener, self.transport, self.factory.tls_options):
            raise Refused(replies.SIEVE_NO_STARTTLS)
        self.ok("Begin TLS negotiation now")
        self.log.info("STARTTLS")
        starttls.begin_tls(self, self.factory.tls_options)
        # §2.2: the capabilities again, now under TLS (written after the handshake).
        self.send_capabilities()

    def reset_after_tls(self):
        """RFC 5804 §2.2: nothing pipelined before the handshake survives it."""
        self.framing.reset()
        self.on_line = None

    async def cmd_AUTHENTICATE(self, mechanism: str, initial: str | None = None):
        if not isinstance(mechanism, str) or mechanism.upper() != "PLAIN":
            raise Refused(replies.SIEVE_UNKNOWN_MECHANISM)
        if not self.password_allowed():
            self.log.info("AUTHENTICATE refused: TLS required")
            raise Refused(replies.SIEVE_TLS_REQUIRED)
        if initial is None:
            self.write(string("") + b"\r\n")       # PLAIN's empty challenge
            initial = await self._next_string()
        if not isinstance(initial, str) or sasl_plain.cancelled(initial):
            raise Refused(replies.SIEVE_AUTH_CANCELLED)
        try:
            user, password = sasl_plain.read_plain(initial)
        except sasl_plain.ForeignAuthzid:
            raise Refused(replies.SIEVE_AUTH_FAILED) from None
        except sasl_plain.Malformed:
            raise Refused(replies.SIEVE_BAD_BASE64) from None
        await self._login(user, password)

    def _next_string(self) -> defer.Deferred:
        """The client's next line, read as one string (None: not a string)."""
        d = defer.Deferred()

        def got(raw):
            try:
                d.callback(read_string(raw) if raw is not None else None)
            except GrammarError:
                d.callback(None)
        self.on_line = got
        return d

    async def _login(self, user: bytes, password: bytes):
        credentials = SessionCredentials(user, password, protocol="sieve",
                                         client_ip=self.client_ip, tls=self.tls,
                                         mechanism="PLAIN", port=self.transport.getHost().port)
        try:
            _iface, account, _logout = await self.portal.login(credentials, None, ISieveUser)
        except UnauthorizedLogin:
            raise Refused(replies.SIEVE_AUTH_FAILED) from None
        except TemporaryAuthFailure:
            raise Refused(replies.SIEVE_TRY_LATER) from None
        if not self.ticket.add_user(account.address):
            self.log.info("too many connections for {user}", user=account.address)
            raise Refused(replies.SIEVE_TOO_MANY_FOR_ACCOUNT)
        self.login_deadline.cancel()
        self.account = account
        self.setTimeout(self.settings.idle_timeout)
        self.log.info("login {user}", user=account.address)
        self.ok("Logged in")

    async def cmd_UNAUTHENTICATE(self):
        self.account = None
        self.ok("Logged out")
