"""POP3 on 110 (with STLS) and 995 (implicit TLS).

Why not ``twisted.mail.pop3.POP3``: measured against Twisted 26.10 (TWISTED-NOTES) it answers
QUIT before the deletions are committed, answers pipelined commands before an asynchronous
PASS has finished, drops the connection on a malformed argument (``DELE abc``), keeps
deleted messages in LIST/UIDL, dot-stuffs per 16 KiB chunk (a crafted message ends RETR
early), advertises joke capabilities and has no STLS, RESP-CODES or AUTH PLAIN.  POP3 is
small, so this is a replacement on our in-order line receiver, like the ESMTP session.

This module is the session: connection, replies, the dispatch of each command to the
state it is valid in, and the commands of both states.  The AUTHORIZATION state is in
``pop3_login``, the TRANSACTION state (and QUIT's UPDATE) in ``pop3_transaction``.

Standards: RFC 1939, RFC 2449 (CAPA, RESP-CODES), RFC 2595 (STLS), RFC 3206
(AUTH-RESP-CODE, [IN-USE], [SYS/TEMP]), RFC 5034 (AUTH PLAIN).  No APOP: it needs the
password stored in plaintext-equivalent form.
Security: after STLS, pipelined input is dropped and the session starts over; USER/PASS
are refused without TLS once the cutover has passed; failures are throttled by the realm.
"""

from __future__ import annotations

from twisted.internet import protocol
from twisted.internet.interfaces import ISSLTransport
from twisted.protocols.policies import TimeoutMixin

from mailstack import replies
from mailstack.logs import SessionLog, new_session_id
from mailstack.protocols.connection_limits import UNCOUNTED, AdmittingFactory
from mailstack.protocols.deadlines import Deadline
from mailstack.protocols.lines import OVERLONG, InOrderLineReceiver
from mailstack.protocols.pop3_lease import MaildropLease, MaildropLocks
from mailstack.protocols.pop3_login import AuthorizationCommands, IPOP3User
from mailstack.protocols.pop3_transaction import TransactionCommands
from mailstack.replies import CodedReply
from mailstack.store.errors import StoreUnavailable


class POP3Session(AuthorizationCommands, TransactionCommands, InOrderLineReceiver,
                  TimeoutMixin):
    MAX_LENGTH = 1024
    ticket = UNCOUNTED        # the listener's admission (connection_limits.py)

    def connectionMade(self):
        f = self.factory               # what every session of the listener shares
        self.settings, self.db, self.clock, self.portal = f.settings, f.db, f.clock, f.portal
        self.client_ip = self.transport.getPeer().host
        self.session_id = new_session_id()
        self.log = SessionLog("mailstack.pop3", self.session_id, self.client_ip)
        self.callLater = self.clock.callLater
        self.setTimeout(self.settings.idle_timeout)
        # Logged in within login_timeout, however busy the client keeps us (issue 13).
        self.login_deadline = Deadline(self.clock, self.settings.login_timeout,
                                       self._login_too_late)
        self.start_queue()
        self._reset()
        self.log.info("connect {name} tls={tls}", name=self.factory.name, tls=self.tls)
        self.ok("mailstack POP3 server ready")

    def _reset(self):
        self.user = None          # from USER, until PASS
        self.account = None       # AccountRef once logged in
        self.drop = None          # [Entry] snapshot
        self.deleted = set()      # 1-based numbers
        self.continuation = None
        self.quitting = False
        # A shutdown that frees this node's locks ends the session (nothing deleted).
        self.lease = MaildropLease(self.factory.locks, self.clock, self.settings.idle_timeout,
                                   self.session_id, self.log,
                                   revoked=self.transport.loseConnection)
        self.read_ahead = None    # ReadAhead once logged in

    def reset_after_tls(self):
        """RFC 2595 §4: forget everything learned before the handshake."""
        self.clear_queue()
        self._reset()

    def connectionLost(self, reason=protocol.connectionDone):
        self.setTimeout(None)
        self.login_deadline.cancel()
        self.ticket.release()
        self.stopProducing()          # a RETR waiting for the client to read ends
        if not self.quitting:
            # No QUIT: RFC 1939 §6 says nothing is deleted; just free the maildrop.
            self._release()
        self.log.info("disconnect")

    def _release(self):
        self.account = None
        self.lease.release()

    @property
    def tls(self) -> bool:
        return ISSLTransport.providedBy(self.transport)

    # --- replies ------------------------------------------------------------------------

    def ok(self, text: str = "") -> None:
        self.transport.write(f"+OK {text}".rstrip().encode("utf-8") + b"\r\n")

    def err(self, reply: CodedReply) -> None:
        self.transport.write(reply.pop3() + b"\r\n")

    def multiline(self, header: str, lines) -> None:
        body = "".join(f"{line}\r\n" for line in lines)
        self.transport.write(f"+OK {header}\r\n{body}.\r\n".encode("utf-8"))

    def command_failed(self, failure):
        if failure.check(StoreUnavailable):
            self.log.warn("store unavailable")
        else:
            self.log.failure("command failed", failure)
        self.err(replies.POP_SYS_TEMP)

    def timeoutConnection(self):
        self.log.info("idle timeout")
        self.err(replies.POP_TIMEOUT)
        self.close_connection()

    def _login_too_late(self):
        if self.account is None and not self.transport.disconnecting:
            self.log.info("no login within {s} s", s=self.settings.login_timeout)
            self.err(replies.POP_LOGIN_TIMEOUT)
            self.close_connection()

    # --- dispatch ------------------------------------------------------------------------

    def process_line(self, line):
        if line is OVERLONG:
            self.continuation = None
            return self.err(replies.POP_LINE_TOO_LONG)
        if self.continuation is not None:
            respond, self.continuation = self.continuation, None
            return respond(line)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return self.err(replies.POP_NOT_UTF8)
        verb, _, argument = text.strip().partition(" ")
        state = "trans" if self.account is not None else "auth"
        renewed = self.lease.renew()    # any command: a long STAT/NOOP session keeps its lock
        if renewed is not None:
            return renewed.addCallback(lambda _: self._dispatch(state, verb, argument))
        return self._dispatch(state, verb, argument)

    def _dispatch(self, state, verb, argument):
        handler = getattr(self, f"{state}_{verb.upper()}", None) if verb.isalpha() else None
        if handler is None:
            other = "auth" if state == "trans" else "trans"
            if verb.isalpha() and hasattr(self, f"{other}_{verb.upper()}"):
                return self.err(replies.POP_NOT_NOW)
            self.log.info("unknown command {verb!r}", verb=verb[:20])
            return self.err(replies.POP_BAD_COMMAND)
        return handler(argument.strip())

    # --- both states ----------------------------------------------------------------------

    def capabilities(self) -> list[str]:
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                "EXPIRE NEVER", "IMPLEMENTATION mailstack"]
        if self.account is None:
            if self.password_allowed():
                caps += ["USER", "SASL PLAIN"]
            if self.stls_offered():
                caps.append("STLS")
        return caps

    def auth_CAPA(self, argument):
        self.multiline("Capability list follows", self.capabilities())

    trans_CAPA = auth_CAPA

    def auth_NOOP(self, argument):
        self.ok()

    trans_NOOP = auth_NOOP

    def auth_QUIT(self, argument):
        self.ok("mailstack POP3 server signing off")
        self.close_connection()


class POP3Factory(AdmittingFactory):
    """One POP3 listener: what its sessions share, each given by ``service.py``.

    ``settings`` is the ``[pop3]`` section; ``tls_options`` the server's certificate (None
    when there is none: no STLS); ``tls_requirement`` when a password needs TLS; ``locks``
    this node's maildrop locks; ``limits`` the admission shared by every listener.
    """

    protocol = POP3Session

    def __init__(self, listener, *, settings, db, clock, portal, tls_options, tls_requirement,
                 locks: MaildropLocks, limits):
        self.listener, self.name = listener, listener.name or f"pop3-{listener.port}"
        self.settings, self.db, self.clock, self.portal = settings, db, clock, portal
        self.tls_options, self.tls_requirement = tls_options, tls_requirement
        self.locks, self.limits = locks, limits

    def too_many(self, reason: str) -> bytes:
        reply = replies.POP_TOO_MANY_FROM_YOU if reason == "address" \
            else replies.POP_TOO_MANY_CONNECTIONS
        return reply.pop3() + b"\r\n"


def register_avatars(realm) -> None:
    """A POP3 login's avatar is the ``AccountRef`` itself."""
    realm.register(IPOP3User, lambda account, mind: account)
