"""The ESMTP server session shared by the MX (port 25) and submission (587/465).

Why not ``twisted.mail.smtp.ESMTP``: measured against Twisted 26.10 (TWISTED-NOTES) its
PIPELINING breaks with any asynchronous validator (a pipelined RCPT gets ``503``, a
pipelined QUIT can close before the 250 after DATA, so the client resends), its reply
types differ by call site (the wrong one hangs the client with no reply and no log), it
answers a failed store with 550, drops out of DATA on a long line, throws MAIL/RCPT
parameters away, has no SIZE/8BITMIME/ENHANCEDSTATUSCODES, and executes commands
pipelined after STARTTLS.  Fixing each would mean overriding nearly every method, so this
is a small replacement on Twisted's line receiver and timeout mixin instead.

How: one reply per command, strictly in order.  Every received line goes into a queue;
a command that needs the store or a policy check returns a Deferred and the queue waits
for it.  What the port allows (recipients, relaying, AUTH) is decided by the listener's
policy (``policy.contract.SMTPPolicy``): the session builds a request, asks, and sends the
outcome's reply; it carries the policy's ``ClientState`` without opening it.  This module
only speaks the protocol: the session, its greeting, STARTTLS and its limits.  MAIL and
RCPT are in ``smtp_envelope``, DATA in ``smtp_data``.

Standards: RFC 5321, RFC 1870 (SIZE), RFC 2920 (PIPELINING), RFC 6152 (8BITMIME),
RFC 2034 and RFC 3463 (enhanced status codes), RFC 3207 (STARTTLS).
Security: STARTTLS goes through ``starttls.begin_tls`` (pipelined input discarded, state
reset); command and header lines are bounded; after too many errors the client is dropped.
"""

from __future__ import annotations

from twisted.internet import defer, protocol
from twisted.internet.interfaces import ISSLTransport
from twisted.protocols.policies import TimeoutMixin

from mailstack import replies
from mailstack.logs import SessionLog, new_session_id
from mailstack.metrics import NO_METRICS
from mailstack.policy.request import SMTPRequest
from mailstack.protocols import starttls
from mailstack.protocols.connection_limits import UNCOUNTED, AdmittingFactory
from mailstack.protocols.deadlines import RateDeadline
from mailstack.protocols.lines import OVERLONG, InOrderLineReceiver
from mailstack.protocols.smtp_data import BODY_LINE_LIMIT, HEADER_LINE_LIMIT, MessageReception
from mailstack.protocols.smtp_envelope import Envelope, EnvelopeCommands
from mailstack.replies import Reply

COMMAND_LINE_LIMIT = 2048     # RFC 5321 §4.5.3.1.4 says 512; AUTH and parameters need more
MAX_ERRORS = 10
JUNK = frozenset({"NOOP", "RSET", "VRFY", "HELP", "HELO", "EHLO"})   # they move no mail


class SMTPSession(EnvelopeCommands, MessageReception, InOrderLineReceiver, TimeoutMixin):
    """One client connection.  ``factory`` provides the settings, listener and policy."""

    ticket = UNCOUNTED        # the listener's admission (connection_limits.py)
    data_deadline = None      # RateDeadline while DATA arrives

    def connectionMade(self):
        factory = self.factory
        self.policy, self.settings = factory.policy, factory.settings
        self.hostname = factory.hostname
        self.max_size = self.settings.max_message_size
        self.client_ip = self.transport.getPeer().host
        self.session_id = new_session_id()
        self.log = SessionLog("mailstack.smtp", self.session_id, self.client_ip)
        self.callLater = factory.clock.callLater   # idle timeout on business time
        self.setTimeout(self.settings.idle_timeout)
        self.helo = None
        self.esmtp = False
        self.authenticated_as = None
        self.client_state = None     # the policy's, from connect; carried in every request
        self.errors = 0
        self.junk = 0              # NOOP, RSET, VRFY, HELP, HELO/EHLO (Postfix's junk commands)
        self.messages = 0
        self.continuation = None   # set while a SASL exchange awaits the client's next line
        self.start_queue(busy=True)  # the banner waits for the connect-time policy
        self._reset_transaction()
        self.log.info("connect {port} tls={tls}", port=self.factory.name, tls=self.tls)
        # The banner waits for the connect-time policy (firewall); input queues meanwhile.
        d = defer.maybeDeferred(self.policy.connect, self.request("connect"))
        d.addCallbacks(self._admitted, self._admission_failed)

    def _admitted(self, outcome):
        if outcome.close:
            if outcome.reply is not None:
                self.reply(outcome.reply)
            else:
                self.log.info("dropped before the banner (firewalled)")
            self.close_connection()
            return
        self.client_state = outcome.client
        self.reply(replies.SERVICE_READY.format(host=self.hostname))
        self.resume()

    def _admission_failed(self, failure):
        self.log.failure("connect check failed", failure)
        self.reply(replies.TEMPORARY_CLOSE.format(host=self.hostname))
        self.close_connection()

    def connectionLost(self, reason=protocol.connectionDone):
        self.setTimeout(None)
        self.ticket.release()
        self._stop_data_deadline()
        self.reset_body()          # a message cut off mid-DATA leaves no spool behind
        if self.in_data:
            self.log.info("disconnected during DATA: nothing stored")
        self.log.info("disconnect")

    # --- state --------------------------------------------------------------------------

    @property
    def tls(self) -> bool:
        return ISSLTransport.providedBy(self.transport)

    def request(self, stage: str, **facts) -> SMTPRequest:
        """What the policy is asked about at ``stage``: the connection's facts and ``facts``."""
        return SMTPRequest(stage=stage, session=self.session_id, client_ip=self.client_ip,
                           port=self.factory.name, tls=self.tls, helo=self.helo,
                           client=self.client_state, **facts)

    def _reset_transaction(self):
        self.envelope = Envelope()
        self.in_data = self.bare_lf_ends_lines = False
        self.reset_body()
        self._stop_data_deadline()

    # --- progress (issue 13): neither a DATA trickle nor endless NOOPs hold a session ----

    def dataReceived(self, data: bytes) -> None:
        if self.data_deadline is not None:
            self.data_deadline.add(len(data))
        super().dataReceived(data)

    def _start_data_deadline(self) -> None:
        s = self.settings
        self.data_deadline = RateDeadline(self.factory.clock, s.idle_timeout, s.min_data_rate,
                                          self._too_slow)

    def _stop_data_deadline(self) -> None:
        if self.data_deadline is not None:
            self.data_deadline.cancel()
            self.data_deadline = None

    def _too_slow(self) -> None:
        self.data_deadline = None
        self.log.info("DATA below {rate} bytes/s; closing", rate=self.settings.min_data_rate)
        self.reply(replies.TOO_SLOW.format(host=self.hostname))
        self.close_connection()

    def junk_command(self) -> bool:
        """Count a command that moves no mail; True (and the session closed) past the limit,
        which grows with each message taken, so a busy relay's RSETs never reach it."""
        self.junk += 1
        if self.junk <= self.settings.junk_command_limit * (self.messages + 1):
            return False
        self.log.info("too many junk commands; closing")
        self.reply(replies.TOO_MANY_JUNK.format(host=self.hostname))
        self.close_connection()
        return True

    def reset_after_tls(self):
        """RFC 3207 §4.2: forget everything learned before the handshake."""
        self.clear_queue()
        self.continuation = None
        self.helo = None
        self.esmtp = False
        self.authenticated_as = None
        self._reset_transaction()

    def max_line_length(self) -> int:
        if not self.in_data:
            return COMMAND_LINE_LIMIT
        return HEADER_LINE_LIMIT + 1 if self._in_headers else BODY_LINE_LIMIT

    # --- replies --------------------------------------------------------------------------

    def reply(self, reply: Reply) -> None:
        self.transport.write(reply.smtp() + b"\r\n")

    def reply_lines(self, code: int, lines) -> None:
        lines = list(lines)
        out = [f"{code}-{line}" for line in lines[:-1]] + [f"{code} {lines[-1]}"]
        self.transport.write(("\r\n".join(out) + "\r\n").encode("utf-8"))

    def refuse(self, reply: Reply, count_error: bool = True) -> None:
        self.reply(reply)
        if count_error and reply.code >= 500:
            self.errors += 1
            if self.errors > MAX_ERRORS:
                self.log.warn("too many errors; closing")
                self.reply(Reply(421, "4.7.0", f"{self.hostname} Too many errors, closing"))
                self.close_connection()

    # --- input --------------------------------------------------------------------------

    def command_failed(self, failure):
        self.log.failure("command failed", failure)
        self.reply(replies.STORE_UNAVAILABLE)

    def process_line(self, line):
        if self.in_data:
            return self.data_line(line)
        if self.continuation is not None:
            respond, self.continuation = self.continuation, None
            return respond(None if line is OVERLONG else line)
        if line is OVERLONG:
            return self.refuse(replies.LINE_TOO_LONG)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return self.refuse(replies.NON_UTF8)
        verb, _, argument = text.partition(" ")
        verb = verb.upper()
        handler = getattr(self, "smtp_" + verb, None) if verb.isalpha() else None
        if handler is None:
            self.log.info("unknown command {verb!r}", verb=verb[:20])
            return self.refuse(replies.SYNTAX_ERROR)
        if verb in JUNK and self.junk_command():
            return None
        result = handler(argument.strip())
        if self.in_data and self.data_deadline is None:
            self._start_data_deadline()
        return result

    # --- commands -------------------------------------------------------------------------

    def smtp_HELO(self, argument):
        return self._greet(argument, esmtp=False)

    def smtp_EHLO(self, argument):
        return self._greet(argument, esmtp=True)

    def _greet(self, argument, esmtp):
        if not argument or " " in argument:
            return self.refuse(replies.ARGUMENT_ERROR)
        self.helo, self.esmtp = argument, esmtp
        self._reset_transaction()
        self.log.info("{verb} {helo!r}", verb="EHLO" if esmtp else "HELO", helo=argument[:100])
        greeting = f"{self.hostname} Hello {argument} [{self.client_ip}]"
        if not esmtp:
            return self.reply_lines(250, [greeting])
        self.reply_lines(250, [greeting] + self.extensions())

    def extensions(self) -> list[str]:
        ext = [f"SIZE {self.max_size}", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES"]
        if self.starttls_offered():
            ext.append("STARTTLS")
        return ext + self.factory.authenticator.extension(self)

    def starttls_offered(self) -> bool:
        return starttls.offered(self.factory.listener, self.transport, self.factory.tls_options)

    def smtp_STARTTLS(self, argument):
        if self.tls:
            return self.refuse(replies.TLS_ALREADY)
        if not self.starttls_offered():
            return self.refuse(replies.NOT_IMPLEMENTED)
        if argument:
            return self.refuse(replies.ARGUMENT_ERROR)
        self.reply(replies.READY_TLS)
        self.log.info("STARTTLS")
        starttls.begin_tls(self, self.factory.tls_options)

    def smtp_AUTH(self, argument):
        return self.factory.authenticator.auth(self, argument)

    def smtp_RSET(self, argument):
        self._reset_transaction()
        self.reply(replies.OK)

    def smtp_NOOP(self, argument):
        self.reply(replies.OK)

    def smtp_VRFY(self, argument):
        # RFC 5321 §3.5.3: answering truthfully would feed directory harvesters.
        self.reply(replies.CANNOT_VRFY)

    def smtp_EXPN(self, argument):
        self.refuse(replies.NOT_IMPLEMENTED)

    def smtp_HELP(self, argument):
        self.reply(replies.HELP)

    def smtp_QUIT(self, argument):
        self.reply(replies.CLOSING)
        self.close_connection()

    def timeoutConnection(self):
        self.log.info("idle timeout")
        self.reply(replies.TIMEOUT.format(host=self.hostname))
        self.close_connection()


class SMTPFactory(AdmittingFactory):
    """Twisted's SMTPFactory does not pass its settings to the protocol; ours carries them:
    the port's ``policy`` (``policy.contract.SMTPPolicy``), its ``authenticator``
    (``smtp_auth``), its ``intake`` (``smtp_intake``: where accepted mail goes), the
    ``[smtp]`` settings, the server's host name and the business clock."""

    protocol = SMTPSession

    def __init__(self, listener, policy, *, authenticator, intake, settings, hostname: str,
                 clock, tls_options, limits, spool_dir, metrics=NO_METRICS):
        self.listener, self.policy, self.authenticator = listener, policy, authenticator
        self.intake, self.settings, self.hostname, self.clock = intake, settings, hostname, clock
        self.tls_options, self.limits, self.spool_dir = tls_options, limits, str(spool_dir)
        self.metrics = metrics       # messages accepted on this listener
        self.name = listener.name or f"smtp-{listener.port}"

    def too_many(self, reason: str) -> bytes:
        reply = replies.TOO_MANY_FROM_YOU if reason == "address" else replies.TOO_MANY_CONNECTIONS
        return reply.format(host=self.hostname).smtp() + b"\r\n"
