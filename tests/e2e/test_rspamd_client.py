"""The rspamd client (``policy/rspamd_client.py`` over ``http_exchange.py``) against a
real rspamd (tests/support/rspamd.py): large messages streamed, scans that overlap,
the envelope rspamd reads, and what rspamd 3.4 does with keep-alive."""

from __future__ import annotations

import socket

import pytest
from twisted.internet import defer, reactor

from mailstack.message.spool import spooled
from mailstack.policy.rspamd_client import RspamdClient
from tests.support.reactor import call
from tests.support.rspamd import BINARY, MISSING, Rspamd

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(BINARY is None, reason=MISSING)]
ENVELOPE = {"IP": "192.0.2.7", "Helo": "mail.sender.test", "From": "bob@sender.test",
            "Rcpt": ["alice@example.test", "carol@example.test"], "Queue-Id": "QID123"}


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    scanner = Rspamd(tmp_path_factory.mktemp("rspamd")).start()
    yield scanner
    scanner.stop()


def message(body: bytes) -> bytes:
    return (b"From: Bob <bob@sender.test>\r\nTo: alice@example.test\r\nSubject: big\r\n"
            b"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <big@sender.test>\r\n\r\n"
            + body)


def check(client, data: bytes, envelope=ENVELOPE) -> dict:
    return call(client.check, spooled(data), envelope)


def test_a_message_of_several_pieces_is_streamed_and_scanned_whole(rspamd):
    client = RspamdClient(reactor, rspamd.url, 30.0)
    filler = b"".join(b"line %06d of a long report about nothing much\r\n" % i
                      for i in range(60_000))
    assert len(filler) > 2 * 1024 * 1024
    data = message(filler)
    answer = check(client, data, {**ENVELOPE, "Queue-Id": "BIG1"})
    assert "MIME_GOOD" in answer["symbols"]
    log = (rspamd.directory / "log" / "rspamd.log").read_text(errors="replace")
    line = next(x for x in log.splitlines() if "qid: <BIG1>" in x)
    assert f"len: {len(data)}," in line             # rspamd read all of it


def test_scans_started_together_are_in_flight_together(rspamd):
    client = RspamdClient(reactor, rspamd.url, 30.0)

    def five():
        return defer.gatherResults([client.check(spooled(message(b"hello %d\r\n" % i)),
                                                 ENVELOPE) for i in range(5)])
    answers = call(five)
    assert len(answers) == 5 and all(isinstance(a["score"], float) for a in answers)
    assert client.peak == 5 and client.in_flight == 0


def test_the_envelope_and_an_authenticated_user_reach_rspamd(rspamd):
    client = RspamdClient(reactor, rspamd.url, 30.0)
    check(client, message(b"hi\r\n"), {**ENVELOPE, "User": "alice@example.test"})
    log = (rspamd.directory / "log" / "rspamd.log").read_text(errors="replace")
    line = next(x for x in log.splitlines() if "qid: <QID123>" in x and "user: alice" in x)
    assert "ip: 192.0.2.7" in line and "user: alice@example.test" in line
    assert "rcpts: <alice@example.test,carol@example.test>" in line


def test_rspamd_34_closes_the_connection_even_when_asked_to_keep_it(rspamd):
    """Why the client opens one connection per message (rspamd_client's docstring)."""
    body = message(b"hi\r\n")
    with socket.create_connection(("127.0.0.1", rspamd.port), timeout=10) as s:
        s.sendall(b"POST /checkv2 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        answer = b""
        while piece := s.recv(65536):
            answer += piece
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200") and b"connection: close" in head
