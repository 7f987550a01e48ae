"""Relayed mail leaves with CRLF line ends only (issue 13, case 8).

RFC 5321 §2.3.8: a bare CR or a bare LF must not be sent.  A customer's message may carry
both; the outbound queue turns each into CRLF on the wire (and dot-stuffs the lines this
creates), so the receiving MX cannot read a line end -- or an end of DATA -- where the
sender saw none.  The receiving server here records the raw bytes of the conversation.
"""

from __future__ import annotations

import re
import smtplib

import pytest
from twisted.internet import protocol, reactor

from mailstack import tls
from mailstack.store import queue
from tests.support.dns_server import DNSServer
from tests.support.reactor import call
from tests.support.smtp_sink import SinkProtocol, SMTPSink
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PASSWORD = "bare cr password"

HEADER = b"From: ann@example.test\r\nTo: x@remote.test\r\nSubject: bare line ends\r\n\r\n"
BODY = (b"line one\rline two\r\n"                # a bare CR inside a line
        b"cr then dot\r.hidden\r\n"              # ... followed by "." (a new line: stuffed)
        b"lone dot after cr\r.\r\n"              # ... making a line of "." (the end of DATA!)
        b"lf then dot\n.also\r\n"                # a bare LF followed by "."
        b"crlf kept\r\n"
        b"cr before crlf\r\r\n"                  # CR CR LF: the first CR is bare
        b"lf lf\n\n"
        b"last line ends in a bare cr\r")
# What DATA carries: the CRLF of CRLF . CRLF ends the message's last line (RFC 5321 §4.1.1.4).
MESSAGE = HEADER + BODY + b"\r\n"


class RawSinkProtocol(SinkProtocol):
    """The sink, also keeping every byte it is sent (the plaintext, after STARTTLS too)."""

    def connectionMade(self):
        self.raw = bytearray()
        self.factory.state.raw.append(self.raw)
        super().connectionMade()

    def dataReceived(self, data):
        self.raw += data
        super().dataReceived(data)


class RawSink(SMTPSink):
    def start(self) -> "RawSink":
        self.state.raw = []

        def listen():
            factory = protocol.ServerFactory.forProtocol(RawSinkProtocol)
            factory.tls_options, factory.state = self.tls_options, self.state
            self.listener = reactor.listenTCP(0, factory, interface=self.interface)
            return self.listener.getHost().port
        self.port = call(listen)
        return self


@pytest.fixture
def relay(make_server, certs):
    ns = DNSServer().start()
    ns.add("remote.test", "MX", 10, "mx.remote.test")
    ns.add("mx.remote.test", "A", "127.0.0.1")
    sink = RawSink(tls.server_options(certs.certificate, certs.private_key)).start()
    server = make_server(
        listeners=[{"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"}],
        dns={"nameservers": [ns.address], "timeout": 1},
        delivery={"remote_port": sink.port, "retry_schedule": [300], "max_queue_age": 3600,
                  "queue_interval": 60})
    server.add_account("ann@example.test", PASSWORD)
    server.sink = sink
    yield server
    sink.stop()
    ns.stop()


def submit_raw(server, message: bytes):
    """DATA exactly as given, then ``.`` (smtplib's sendmail would dot-stuff after bare LFs
    too).  ``message`` ends in CRLF and has no line to stuff."""
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10) as client:
        client.starttls(context=server.context)
        client.login("ann@example.test", PASSWORD)
        assert client.mail("ann@example.test")[0] == 250
        assert client.rcpt("x@remote.test")[0] == 250
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(message + b".\r\n")
        code, text = client.getreply()
        assert code == 250, text


def normalised(message: bytes) -> bytes:
    return message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def data_on_the_wire(raw: bytes) -> bytes:
    """What followed ``DATA``, up to and including the first CRLF . CRLF."""
    start = raw.index(b"\r\nDATA\r\n") + len(b"\r\nDATA\r\n")
    end = raw.index(b"\r\n.\r\n", start) + len(b"\r\n.\r\n")
    return bytes(raw[start:end])


def test_bare_cr_and_bare_lf_go_out_as_crlf_and_the_content_is_intact(relay):
    submit_raw(relay, MESSAGE)
    (got,) = eventually(lambda: relay.sink.messages)
    assert got.recipients == ["x@remote.test"] and got.tls
    eventually(lambda: relay.db(queue.listing) == [])

    (raw,) = relay.sink.state.raw
    wire = data_on_the_wire(bytes(raw))
    assert re.search(rb"\r(?!\n)", wire) is None, f"a bare CR on the wire: {wire!r}"
    assert re.search(rb"(?<!\r)\n", wire) is None, f"a bare LF on the wire: {wire!r}"
    assert wire.endswith(b"\r\n.\r\n")
    lines = wire[:-len(b".\r\n")].split(b"\r\n")[:-1]
    assert b"." not in lines, "the end of DATA came early"
    unstuffed = b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in lines)
    # The server puts its trace fields above the customer's header; the rest is theirs.
    assert unstuffed.endswith(normalised(MESSAGE)), unstuffed
    assert unstuffed.startswith(b"Received: ")   # a relayed copy gets no Return-Path
    assert b"\r\n..hidden\r\n" in wire and b"\r\n..\r\n" in wire and b"\r\n..also\r\n" in wire
    assert got.body == unstuffed                         # the sink read the same message
