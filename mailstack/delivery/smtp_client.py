"""One outbound SMTP conversation: several recipients of one destination, per-recipient
results, opportunistic STARTTLS.

Why not ``ESMTPSenderFactory``: when every recipient fails it reports only the last RCPT's
code, and its chunked dot-stuffing lets a crafted message inject SMTP commands into the
receiving server (TWISTED-NOTES).  This client is small: it records the reply to every
RCPT and streams the body through our one stateful dot-stuffer.

Line ends: a customer's message may carry a bare CR or a bare LF, which must not be sent
(RFC 5321 §2.3.8); the dot-stuffer makes each a CRLF (``dotstuff.py`` says why).

MTA-STS: before MAIL FROM the session's TLS is judged by the destination's policy
(``tls_check.TLSCheck``: nothing for a domain without one); the result is kept on the
``Outcome`` for TLS-RPT, and in ``enforce`` mode a failure ends the session with a
temporary error instead of sending the mail.

Standards: RFC 5321 §2.3.8, §3-4, §4.5.2, RFC 3207 (STARTTLS), RFC 7435 (opportunistic TLS:
no certificate check, TLS 1.2 floor), RFC 1870 (SIZE), RFC 8461 §5 (MTA-STS enforce:
STARTTLS and a valid certificate, else a temporary failure).
Security: for a domain without an MTA-STS policy in force, opportunistic TLS only (RFC
3207 §4, RFC 7435): STARTTLS is used when the remote MX offers it, with a TLS 1.2 floor,
but its certificate is not verified and a missing or refused STARTTLS continues in the
clear.  That protects against passive eavesdropping, not against an active attacker on
the path, who can strip STARTTLS or present any certificate and read or change the mail;
there is no DANE (RFC 7672).  With an ``enforce`` policy no command after EHLO is sent
before TLS is up and the certificate is valid for the MX host; replies that arrive in the
same read as the 220 to STARTTLS are dropped with the buffer (Twisted's line receiver
keeps them: a man in the middle could inject them before the handshake).  The body goes
through the one stateful dot-stuffer, so a crafted message cannot end DATA early
(SMTP smuggling) and bare CR or LF become CRLF; a reply line is at most MAX_LENGTH octets
and a silent server is dropped after the timeout, but the number of lines in a multi-line
reply is not bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet import defer, protocol
from twisted.protocols import basic
from twisted.protocols.policies import TimeoutMixin

from mailstack import dotstuff, tls
from mailstack.delivery.tls_check import NO_CHECK

CHUNK = 64 * 1024        # octets of the body written at a time


@dataclass
class Outcome:
    """Per recipient: (code, text). A connection-level failure leaves ``error`` set."""

    replies: dict = field(default_factory=dict)
    error: str | None = None
    temporary: bool = True
    tls: bool = False
    judged: bool = False          # the session reached the MTA-STS check (a TLS-RPT session)
    tls_failure: str | None = None     # its RFC 8460 result-type when it failed


class ClientProtocol(basic.LineOnlyReceiver, TimeoutMixin):
    _stuffer = None          # while DATA's body is being written
    delimiter = b"\r\n"
    MAX_LENGTH = 8192

    def __init__(self, job, done: defer.Deferred, timeout: float, reactor, check=NO_CHECK):
        self.job, self.done, self.outcome, self.check = job, done, Outcome(), check
        self.callLater = reactor.callLater
        self._timeout = timeout
        self._lines = []
        self._next = self._greeting
        self._accepted = []

    def connectionMade(self):
        self.setTimeout(self._timeout)

    # LineOnlyReceiver hands on every line of a read, even those that followed the 220 to
    # STARTTLS in the clear (where an attacker could have put them): those are dropped.
    _cleartext_tail = False

    def dataReceived(self, data):
        self._cleartext_tail = False
        super().dataReceived(data)

    def lineReceived(self, line):
        if self._cleartext_tail:
            return
        self.resetTimeout()
        self._lines.append(line)
        if line[3:4] == b"-":
            return
        code = int(line[:3]) if line[:3].isdigit() else 0
        text = b"\n".join(l[4:] for l in self._lines).decode("utf-8", "replace")
        self._lines = []
        self._next(code, text)

    def send(self, command: str, then):
        self._next = then
        self.transport.write(command.encode("utf-8") + b"\r\n")

    def fail(self, code, text, temporary=None):
        self.outcome.error = f"{code} {text}".strip()
        self.outcome.temporary = code < 500 if temporary is None else temporary
        self.send("QUIT", lambda *_: self.transport.loseConnection())
        self._finish()

    def _finish(self):
        if not self.done.called:
            self.done.callback(self.outcome)

    def _greeting(self, code, text):
        if code != 220:
            return self.fail(code, text)
        self.send(f"EHLO {self.job.helo}", self._ehlo)

    def _ehlo(self, code, text):
        if code != 250:
            return self.send(f"HELO {self.job.helo}", self._helo)
        extensions = {line.split(" ")[0].upper() for line in text.split("\n")[1:]}
        if "STARTTLS" in extensions and not self.outcome.tls:
            return self.send("STARTTLS", self._starttls)
        self._mail(extensions)

    def _helo(self, code, text):
        if code != 250:
            return self.fail(code, text)
        self._mail(set())

    def _starttls(self, code, text):
        if code != 220:
            return self._mail(set())   # opportunistic: carry on in the clear (if allowed)
        self._cleartext_tail, self._buffer = True, b""   # nothing sent before TLS is believed
        self.transport.startTLS(tls.opportunistic_client_options())
        self.outcome.tls = True
        self.send(f"EHLO {self.job.helo}", self._ehlo)

    def _passes_policy(self) -> bool:
        """The session's TLS judged by the destination's MTA-STS policy (RFC 8461 §5);
        in enforce mode a failure ends it as a temporary failure."""
        if not self.check.applies:
            return True
        failure = self.check.judge(self.transport if self.outcome.tls else None)
        self.outcome.judged, self.outcome.tls_failure = True, failure
        if failure and self.check.enforced:
            self.fail(451, f"4.7.5 MTA-STS policy of the recipient domain not met by "
                           f"{self.check.mx_host}: {failure}")
            return False
        return True

    def _mail(self, extensions):
        if not self._passes_policy():
            return
        size = f" SIZE={len(self.job.body)}" if "SIZE" in extensions else ""
        body = " BODY=8BITMIME" if "8BITMIME" in extensions else ""
        self.send(f"MAIL FROM:<{self.job.sender}>{size}{body}", self._mail_reply)

    def _mail_reply(self, code, text):
        if code != 250:
            return self.fail(code, text)
        self._pending = list(self.job.recipients)
        self._rcpt_next()

    def _rcpt_next(self):
        if not self._pending:
            if not self._accepted:
                return self._no_recipients()
            return self.send("DATA", self._data)
        self._current = self._pending.pop(0)
        self.send(f"RCPT TO:<{self._current}>", self._rcpt_reply)

    def _rcpt_reply(self, code, text):
        self.outcome.replies[self._current] = (code, text)
        if 200 <= code < 300:
            self._accepted.append(self._current)
        self._rcpt_next()

    def _no_recipients(self):
        self.send("QUIT", lambda *_: self.transport.loseConnection())
        self._finish()

    def _data(self, code, text):
        if code != 354:
            return self._data_failed(code, text)
        self._stuffer, self._offset, self._paused = dotstuff.DotStuffer(), 0, False
        self.transport.registerProducer(self, True)
        self._pump()

    # The body is written as the receiver reads it (we are the transport's producer), so a
    # 25 MB message is not copied whole, dot-stuffed, into the transport's buffer.
    def _pump(self):
        body = self.job.body
        while not self._paused and self._offset < len(body) and not self.transport.disconnecting:
            self.transport.write(self._stuffer.feed(body[self._offset:self._offset + CHUNK]))
            self._offset += CHUNK
        if self._offset >= len(body) and self._stuffer is not None:
            self.transport.unregisterProducer()
            self.transport.write(self._stuffer.finish())
            self._stuffer = None
            self._next = self._sent

    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        self._paused = False
        self.resetTimeout()              # the receiver is reading: the session is alive
        if self._stuffer is not None:
            self._pump()

    def stopProducing(self):
        self._paused = True

    def _sent(self, code, text):
        if not 200 <= code < 300:
            return self._data_failed(code, text)
        for recipient in self._accepted:
            self.outcome.replies[recipient] = (code, text)
        self.send("QUIT", lambda *_: self.transport.loseConnection())
        self._finish()

    def _data_failed(self, code, text):
        for recipient in self._accepted:
            self.outcome.replies[recipient] = (code, text)
        self.send("QUIT", lambda *_: self.transport.loseConnection())
        self._finish()

    def timeoutConnection(self):
        self.outcome.error, self.outcome.temporary = "timeout", True
        self.transport.abortConnection()
        self._finish()

    def connectionLost(self, reason=protocol.connectionDone):
        self.setTimeout(None)
        if not self.done.called:
            self.outcome.error = self.outcome.error or "connection lost"
            self.outcome.temporary = True
            self._finish()


@dataclass(frozen=True)
class Job:
    helo: str
    sender: str
    recipients: tuple
    body: bytes


class ClientFactory(protocol.ClientFactory):
    def __init__(self, job: Job, timeout: float, reactor, check=NO_CHECK):
        self.job, self.timeout, self.reactor, self.check = job, timeout, reactor, check
        self.done = defer.Deferred()

    def buildProtocol(self, addr):
        p = ClientProtocol(self.job, self.done, self.timeout, self.reactor, self.check)
        p.factory = self
        return p
