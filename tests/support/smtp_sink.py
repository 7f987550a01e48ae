"""A receiving SMTP server on loopback for the outbound tests: it records what arrives and
answers each RCPT as the test tells it (250, a 4xx, a 5xx).  It offers STARTTLS with the dev
certificate, so the runner's opportunistic TLS is exercised for real.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet import protocol, reactor
from twisted.protocols import basic

from tests.support.reactor import call


@dataclass
class Received:
    sender: str
    recipients: list
    body: bytes
    tls: bool


@dataclass
class SinkState:
    replies: dict = field(default_factory=dict)     # recipient -> "451 4.2.0 busy"
    messages: list = field(default_factory=list)
    connections: int = 0


class SinkProtocol(basic.LineOnlyReceiver):
    delimiter = b"\r\n"
    MAX_LENGTH = 1 << 20

    def connectionMade(self):
        self.state = self.factory.state
        self.state.connections += 1
        self.sender, self.recipients, self.lines, self.in_data, self.tls = None, [], [], False, False
        self.send("220 sink.test ESMTP")

    def send(self, text):
        self.transport.write(text.encode() + b"\r\n")

    def lineReceived(self, line):
        if self.in_data:
            if line == b".":
                self.in_data = False
                body = b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in self.lines)
                self.state.messages.append(Received(self.sender, self.recipients, body, self.tls))
                self.sender, self.recipients, self.lines = None, [], []
                return self.send("250 2.0.0 stored")
            return self.lines.append(line)
        verb, _, arg = line.decode().partition(" ")
        verb = verb.upper()
        if verb == "EHLO":
            extensions = ["250-sink.test", "250-SIZE 10000000", "250-8BITMIME"]
            if not self.tls and self.factory.tls_options is not None:
                extensions.append("250-STARTTLS")
            self.send("\r\n".join(extensions + ["250 PIPELINING"]))
        elif verb == "STARTTLS":
            self.send("220 2.0.0 go ahead")
            self.transport.startTLS(self.factory.tls_options)
            self.tls = True
        elif verb == "MAIL":
            self.sender = arg.split(":", 1)[1].split(">")[0].lstrip(" <")
            self.send("250 2.1.0 ok")
        elif verb == "RCPT":
            rcpt = arg.split(":", 1)[1].strip(" <>")
            reply = self.state.replies.get(rcpt, "250 2.1.5 ok")
            if reply.startswith("2"):
                self.recipients.append(rcpt)
            self.send(reply)
        elif verb == "DATA":
            self.in_data = True
            self.send("354 go")
        elif verb == "QUIT":
            self.send("221 bye")
            self.transport.loseConnection()
        else:
            self.send("250 ok")


class SMTPSink:
    def __init__(self, tls_options=None, interface="127.0.0.1"):
        self.state = SinkState()
        self.tls_options, self.interface = tls_options, interface

    def start(self) -> "SMTPSink":
        def listen():
            factory = protocol.ServerFactory.forProtocol(SinkProtocol)
            factory.tls_options = self.tls_options
            factory.state = self.state
            self.listener = reactor.listenTCP(0, factory, interface=self.interface)
            return self.listener.getHost().port
        self.port = call(listen)
        return self

    def stop(self):
        call(self.listener.stopListening)

    @property
    def messages(self):
        return self.state.messages
