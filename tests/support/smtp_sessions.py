"""An ESMTP session (protocols/esmtp.py) on a TLS-capable ``StringTransport``, with SMTP
AUTH through a portal double: for the tests of STARTTLS, AUTH and the session's limits.

Why a portal double and not the realm: what smtp_auth promises is the SASL exchange and
its replies; the realm's own rules (hashes, throttling) are tested in test_realm.py.  The
double records the credentials each login was tried with (mechanism, TLS, port).
"""

from __future__ import annotations

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.address import IPv4Address

from mailstack.policy.tls_required import TLSRequirement
from mailstack.protocols.esmtp import SMTPFactory
from mailstack.protocols.smtp_auth import Authenticator
from mailstack.realm.checker import TemporaryAuthFailure
from mailstack.realm.credentials import AccountRef
from tests.support.policy_doubles import FakePolicy, clock_at, settings
from tests.support.sessions import TLS_OPTIONS, TLSStringTransport

CLIENT = "192.0.2.7"


class FakePortal:
    """``users`` maps a login name to (password, AccountRef); ``down`` fails every login as
    a store outage would."""

    def __init__(self, users=None, down=False):
        self.users = dict(users or {})
        self.down = down
        self.tried = []
        self.logged_out = 0

    def login(self, credentials, mind, interface):
        self.tried.append(credentials)
        if self.down:
            return defer.fail(TemporaryAuthFailure("store down (test)"))
        user = credentials.username
        user = user.decode() if isinstance(user, bytes) else user
        password = credentials.password
        password = password.decode() if isinstance(password, bytes) else password
        known = self.users.get(user.lower())
        if known is None or known[0] != password:
            return defer.fail(UnauthorizedLogin())
        return defer.succeed((interface, known[1], self._logout))

    def _logout(self):
        self.logged_out += 1


ANN = AccountRef(1, "ann@example.test")
USERS = {"ann@example.test": ("secret", ANN)}


class SMTPClient:
    """One session: ``say`` lines, get the reply lines; ``clock`` is the business clock."""

    def __init__(self, *, tls="starttls", certificates=True, auth=True, cutover=None,
                 portal=None, policy=None, clock=None, **smtp):
        self.clock = clock or clock_at()
        config = settings(smtp=smtp, listeners=[{"name": "submission", "protocol": "smtp",
                                                 "port": 587, "tls": tls}])
        self.portal = portal or FakePortal(USERS)
        self.policy = policy or FakePolicy()
        self.authenticator = Authenticator(self.portal, TLSRequirement(self.clock, cutover), auth)
        self.factory = SMTPFactory(config.listeners[0], self.policy,
                                   authenticator=self.authenticator, intake=None,
                                   settings=config.smtp, hostname="mx.example.test",
                                   clock=self.clock,
                                   tls_options=TLS_OPTIONS if certificates else None,
                                   limits=None, spool_dir=None)
        self.session = self.factory.protocol()     # no connection limits: not counted
        self.session.factory = self.factory
        self.transport = TLSStringTransport(peerAddress=IPv4Address("TCP", CLIENT, 40000),
                                            hostAddress=IPv4Address("TCP", "192.0.2.1", 587))
        if tls == "implicit":
            self.transport.make_tls()
        self.session.makeConnection(self.transport)
        self.greeting = self.take()

    def take(self) -> list[str]:
        out = self.transport.value().decode()
        self.transport.clear()
        return out.splitlines()

    def send_raw(self, data: bytes) -> list[str]:
        self.session.dataReceived(data)
        return self.take()

    def say(self, *lines: str | bytes) -> list[str]:
        return self.send_raw(b"".join((l if isinstance(l, bytes) else l.encode()) + b"\r\n"
                                      for l in lines))

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting


def codes(reply_lines) -> list[str]:
    return [line[:3] for line in reply_lines if line[3:4] == " "]
