"""The outbound client sends CRLF line ends only (RFC 5321 §2.3.8): a bare CR or bare LF in a
queued message becomes CRLF on the wire and the lines this makes are dot-stuffed."""

from __future__ import annotations

import re

import pytest
from twisted.internet import defer, task
from twisted.internet.testing import StringTransport

from mailstack.delivery.smtp_client import ClientProtocol, Job


def conversation(body: bytes) -> tuple[bytes, bytes]:
    """(the MAIL command, the DATA stream) as the client writes them."""
    client = ClientProtocol(Job("mx.example.test", "a@example.test", ("x@remote.test",), body),
                            defer.Deferred(), 30, task.Clock())
    transport = StringTransport()
    client.makeConnection(transport)
    client.dataReceived(b"220 remote ESMTP\r\n")
    client.dataReceived(b"250-remote\r\n250-SIZE 100000000\r\n250 8BITMIME\r\n")
    mail = transport.value().split(b"\r\n")[-2]
    client.dataReceived(b"250 2.1.0 ok\r\n")
    client.dataReceived(b"250 2.1.5 ok\r\n")
    transport.clear()
    client.dataReceived(b"354 go ahead\r\n")
    data = transport.value()
    client.dataReceived(b"250 2.0.0 queued\r\n")
    return mail, data


def assert_crlf_only(wire: bytes):
    assert re.search(rb"\r(?!\n)", wire) is None, wire
    assert re.search(rb"(?<!\r)\n", wire) is None, wire


@pytest.mark.parametrize("body, wire", [
    (b"a\rb\r\n", b"a\r\nb\r\n.\r\n"),
    (b"a\r.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),          # would have ended DATA early
    (b"a\r.x\r\n", b"a\r\n..x\r\n.\r\n"),
    (b"a\n.x\n", b"a\r\n..x\r\n.\r\n"),                     # bare LF: the stuffer, as before
    (b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n"),
    (b"ends in cr\r", b"ends in cr\r\n.\r\n"),
    (b"\r\r\r", b"\r\n\r\n\r\n.\r\n"),
    (b".a\r\nb\r\n", b"..a\r\nb\r\n.\r\n"),                 # CRLF messages are unchanged
])
def test_each_line_end_goes_out_as_crlf_and_new_lines_are_stuffed(body, wire):
    mail, data = conversation(body)
    assert data == wire
    assert_crlf_only(data)


def test_a_bare_cr_on_a_chunk_boundary_becomes_a_line_end_and_its_dot_is_stuffed():
    body = b"x" * 65535 + b"\r.y" + b"z" * 70000 + b"\r\n"
    mail, data = conversation(body)
    assert_crlf_only(data)
    assert b"\r\n..y" in data and data.endswith(b"\r\n.\r\n")
    assert mail.startswith(b"MAIL FROM:<a@example.test>") and b" SIZE=%d" % len(body) in mail
