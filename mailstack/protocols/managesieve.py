"""ManageSieve on 4190 (STARTTLS, or implicit TLS as configured): the session.

Why: customers edit their filters and vacation replies from Roundcube and Thunderbird,
which speak ManageSieve (issue 19).  Twisted has no ManageSieve; the protocol is small and
shares IMAP's string syntax, so the session runs on Twisted's ``Protocol`` with IMAP's
bounded framing (``imap_framing``: commands with their literals, every size bounded
before a byte is kept), ``managesieve_grammar`` reading the arguments, one command at a
time; the login commands are in ``managesieve_login``, the script commands in
``managesieve_scripts``.

Standards: RFC 5804 (§1.3 response codes, §1.7 capabilities, §2.1 AUTHENTICATE, §2.2
STARTTLS, §2.3-§2.14 the commands), RFC 4616 (PLAIN), RFC 4422 §3.5 (cancel with "*").
Security: one command runs at a time and the socket is not read while replies wait; a
literal over the limit is counted off and discarded, never buffered (a script over
``max_script_size`` gets ``NO (QUOTA/MAXSIZE)``); after STARTTLS everything pipelined is
dropped; no password without TLS after the cutover (``policy.tls_required``); failures
are throttled and recorded by the realm (protocol ``sieve``); no exception text reaches
a client; passwords are never logged.
"""

from __future__ import annotations

import inspect

from twisted.internet import defer, protocol
from twisted.protocols import policies

from mailstack import replies
from mailstack.logs import SessionLog, new_session_id
from mailstack.protocols import imap_framing as framing, starttls
from mailstack.protocols.connection_limits import UNCOUNTED, AdmittingFactory
from mailstack.protocols.deadlines import Deadline
from mailstack.protocols.framed_flow import FramedFlow
from mailstack.protocols.managesieve_grammar import GrammarError, read_command, response, string
from mailstack.protocols.managesieve_login import ISieveUser, LoginCommands
from mailstack.protocols.managesieve_scripts import Refused, ScriptCommands
from mailstack.sieve.extensions import SUPPORTED
from mailstack.store.errors import StoreUnavailable

SMALL_LITERAL = 4096        # a name or a SASL response; scripts may be max_script_size
ANY, AUTHED, NOT_AUTHED = ("not-auth", "auth"), ("auth",), ("not-auth",)
STATES = {"CAPABILITY": ANY, "LOGOUT": ANY, "NOOP": ANY, "STARTTLS": NOT_AUTHED,
          "AUTHENTICATE": NOT_AUTHED, "UNAUTHENTICATE": AUTHED,
          **{name: AUTHED for name in ("PUTSCRIPT", "CHECKSCRIPT", "GETSCRIPT", "LISTSCRIPTS",
                                       "SETACTIVE", "DELETESCRIPT", "RENAMESCRIPT",
                                       "HAVESPACE")}}
SCRIPT_UPLOADS = (b"PUTSCRIPT", b"CHECKSCRIPT")


class ManageSieveSession(LoginCommands, ScriptCommands, FramedFlow, protocol.Protocol,
                         policies.TimeoutMixin):
    ticket = UNCOUNTED          # the listener's admission (connection_limits.py)

    def __init__(self, factory):
        self.factory, self.settings = factory, factory.settings
        self.db, self.clock, self.portal = factory.db, factory.clock, factory.portal
        self.account = None          # AccountRef once logged in
        self.framing = framing.Framing(self.settings.max_script_size + 2 * SMALL_LITERAL)
        self.on_line = None          # the SASL exchange waiting for the client's response
        self.read_limit = self.framing.max_command
        self.start_flow()            # back-pressure, one command at a time (framed_flow.py)

    # --- connection ---------------------------------------------------------------------
    def connectionMade(self):
        self.client_ip = self.transport.getPeer().host
        self.session_id = new_session_id()
        self.log = SessionLog("mailstack.sieve", self.session_id, self.client_ip)
        self.callLater = self.clock.callLater
        self.setTimeout(self.settings.login_timeout)     # idle_timeout once logged in
        self.login_deadline = Deadline(self.clock, self.settings.login_timeout,
                                       self._login_too_late)
        self.transport.registerProducer(self, True)
        self.log.info("connect {name} tls={tls}", name=self.factory.name, tls=self.tls)
        self.send_capabilities("mailstack ManageSieve ready")

    def connectionLost(self, reason=protocol.connectionDone):
        self.setTimeout(None)
        self.login_deadline.cancel()
        self.framing.reset()
        self.ticket.release()
        self.log.info("disconnect")

    def timeoutConnection(self):
        self.log.info("idle timeout")
        self.bye(replies.SIEVE_TIMEOUT)

    def _login_too_late(self):
        if self.account is None and not self.transport.disconnecting:
            self.log.info("no login within {s} s", s=self.settings.login_timeout)
            self.bye(replies.SIEVE_LOGIN_TIMEOUT)

    def bye(self, reply: replies.CodedReply):
        self.transport.write(response("BYE", reply.code, reply.text))
        self.close_connection()

    def close_connection(self):
        """Close once what was written is sent (a registered producer would hold it open)."""
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    @property
    def tls(self) -> bool:
        return starttls.is_tls(self.transport)

    # --- input (back-pressure: framed_flow.py) ----------------------------------------------
    def dataReceived(self, data: bytes):
        self.resetTimeout()
        self.take(data)

    def _handle(self, event):
        if isinstance(event, framing.Command):
            waiting, self.on_line = self.on_line, None
            return waiting(event.raw) if waiting is not None else self._run(event.raw)
        if isinstance(event, framing.LiteralRequest):
            return self._literal_requested(event)
        if self.on_line is not None:          # the SASL response was refused
            waiting, self.on_line = self.on_line, None
            return waiting(None)
        if isinstance(event, framing.TooLong):
            return self.reply(replies.SIEVE_LINE_TOO_LONG)
        if self.account is not None and \
                event.head.split(b" ", 1)[0].upper() in SCRIPT_UPLOADS:  # framing.Discarded
            return self.reply(replies.SIEVE_TOO_BIG)
        self.reply(replies.SIEVE_LITERAL_TOO_LONG)

    def _literal_requested(self, request: framing.LiteralRequest):
        """Accept a literal, or count it off unread: the client sends its octets whether
        synchronising or not (RFC 5804 has no continuation for them)."""
        upload = request.head.split(b" ", 1)[0].upper() in SCRIPT_UPLOADS
        limit = self.settings.max_script_size if upload and self.account else SMALL_LITERAL
        if request.size > limit:
            self.log.info("literal of {size} octets refused", size=request.size)
            self.framing.discard_literal()
        else:
            self.framing.accept_literal()

    # --- running a command ------------------------------------------------------------------
    def _run(self, raw: bytes):
        try:
            name, args = read_command(raw)
        except GrammarError:
            return self.reply(replies.SIEVE_SYNTAX)
        state = "auth" if self.account is not None else "not-auth"
        if name not in STATES:
            self.log.info("unknown command {name!r}", name=name[:20])
            return self.reply(replies.SIEVE_UNKNOWN_COMMAND)
        if state not in STATES[name]:
            return self.reply(replies.SIEVE_NOT_NOW)
        handler = getattr(self, "cmd_" + name)
        try:
            inspect.signature(handler).bind(*args)
        except TypeError:                    # too few or too many arguments
            return self.reply(replies.SIEVE_SYNTAX)
        self._busy = True
        d = defer.ensureDeferred(self._execute(handler, name, args))
        d.addErrback(self._crashed, name)
        d.addBoth(self._done)

    async def _execute(self, handler, name: str, args: list):
        try:
            await handler(*args)
        except Refused as refused:
            self.reply(refused.reply)
        except StoreUnavailable:
            self.log.warn("store unavailable during {name}", name=name)
            self.reply(replies.SIEVE_TRY_LATER)

    def _crashed(self, failure, name: str):
        self.log.failure("ManageSieve {name} failed", failure, name=name)
        if not self.transport.disconnecting:
            self.reply(replies.SIEVE_TRY_LATER)

    def _done(self, _):
        self._command_done()

    # --- replies ----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def ok(self, text: str | None = None, code: str | bytes | None = None) -> None:
        self.transport.write(response("OK", code, text))

    def reply(self, reply: replies.CodedReply) -> None:
        """``NO (CODE) "text"``."""
        self.transport.write(response("NO", reply.code, reply.text))

    # --- any state (RFC 5804 §1.7, §2.4, §2.13, §3.1) ----------------------------------------
    def capabilities(self) -> list[bytes]:
        caps = [b'"IMPLEMENTATION" "mailstack"', b'"VERSION" "1.0"',
                b'"SASL" ' + string("PLAIN" if self.password_allowed() else ""),
                b'"SIEVE" ' + string(" ".join(SUPPORTED)), b'"UNAUTHENTICATE"']
        if self.account is None and starttls.offered(self.factory.listener, self.transport,
                                                     self.factory.tls_options):
            caps.append(b'"STARTTLS"')
        if self.account is not None:
            caps.append(b'"OWNER" ' + string(self.account.address))
        return caps

    def send_capabilities(self, text: str | None = None) -> None:
        """The capability lines and ``OK``: at connect, for CAPABILITY, after STARTTLS."""
        self.write(b"".join(cap + b"\r\n" for cap in self.capabilities()))
        self.ok(text)

    async def cmd_CAPABILITY(self):
        self.send_capabilities()

    async def cmd_NOOP(self, tag: str | None = None):
        """RFC 5804 §2.13: the client's string comes back in a TAG response code."""
        self.ok("Done", b"TAG " + string(tag) if isinstance(tag, str) else None)

    async def cmd_LOGOUT(self):
        self.ok("Logout complete")
        self.close_connection()


class ManageSieveFactory(AdmittingFactory):
    """One ManageSieve listener: what its sessions share, each given by ``service.py``.

    ``settings`` is the ``[sieve]`` section; ``tls_options`` the server's certificate (None
    when there is none: no STARTTLS); ``tls_requirement`` when a password needs TLS;
    ``limits`` the admission shared by every listener.
    """

    def __init__(self, listener, *, settings, db, clock, portal, tls_options, tls_requirement,
                 limits):
        self.listener, self.name = listener, listener.name or f"sieve-{listener.port}"
        self.settings, self.db, self.clock, self.portal = settings, db, clock, portal
        self.tls_options, self.tls_requirement, self.limits = tls_options, tls_requirement, limits

    def build_session(self, addr):
        return ManageSieveSession(self)

    def too_many(self, reason: str) -> bytes:
        reply = replies.SIEVE_TOO_MANY_FROM_YOU if reason == "address" \
            else replies.SIEVE_TOO_MANY_CONNECTIONS
        return response("BYE", reply.code, reply.text)


def register_avatars(realm) -> None:
    """A ManageSieve login's avatar is the ``AccountRef`` itself."""
    realm.register(ISieveUser, lambda account, mind: account)
