"""A client that pipelines commands and never reads the replies costs bounded memory.

Issue 13, case 1: 10 MB of CAPABILITY to IMAP before login grew the process by 149 MB,
60 MB of NOOP to SMTP by 604 MB; every reply waited in the transport.  Now each session is
its transport's producer: no command runs while the client leaves replies unread, and the
socket is not read while commands wait, so the sender blocks in its own kernel buffer.
The server runs in this test's process (tests/support/server.py), so its RSS is ours.
"""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from tests.support.memory import rss

pytestmark = pytest.mark.e2e
PASSWORD = "pipelining pw"
SENT = 10 * 1024 * 1024
GROWTH = 10 * 1024 * 1024


@pytest.fixture
def server(make_server):
    # smtp, pop3, pop3s, imap and imaps (tests/support/server.py).  The junk-command limit
    # would end the NOOP flood after 100 (test_connection_limits.py): lifted, so that what
    # is measured here is the back-pressure.
    server = make_server(smtp={"junk_command_limit": 10**9})
    server.add_account("ann@example.test", PASSWORD)
    return server


def flood(sock, line: bytes, seconds: float = 4.0) -> tuple[int, int]:
    """Send ``line`` repeatedly, never reading, until SENT bytes or the server stops reading:
    (bytes sent, the highest RSS seen meanwhile)."""
    chunk = line * (65536 // len(line))
    sock.settimeout(0.5)
    sent, peak, deadline = 0, rss(), time.monotonic() + seconds
    while sent < SENT and time.monotonic() < deadline:
        try:
            sent += sock.send(chunk)
        except (socket.timeout, ssl.SSLWantWriteError):
            pass
        peak = max(peak, rss())
    return sent, peak


def connect(server, name: str, tls: bool = False):
    sock = socket.create_connection(("127.0.0.1", server.port(name)), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    if tls:
        sock = server.context.wrap_socket(sock, server_hostname="mx.example.test")
    sock.recv(4096)                                   # the greeting
    return sock


def after_login(sock, login: bytes) -> None:
    sock.sendall(login)
    time.sleep(0.5)
    sock.recv(65536)


CASES = {
    "smtp": ("smtp", b"NOOP\r\n", None),
    "pop3 before login": ("pop3", b"CAPA\r\n", None),
    "pop3s after login": ("pop3s", b"STAT\r\n",
                         b"USER ann@example.test\r\nPASS " + PASSWORD.encode() + b"\r\n"),
    "imap before login": ("imap", b"a CAPABILITY\r\n", None),
    "imaps after login": ("imaps", b"a CAPABILITY\r\n",
                          b'l LOGIN ann@example.test "' + PASSWORD.encode() + b'"\r\n'),
}


@pytest.mark.parametrize("case", list(CASES))
def test_ten_megabytes_pipelined_without_reading_cost_bounded_memory(server, case):
    name, line, login = CASES[case]
    tls = name.endswith("s") and name != "smtp"
    sock = connect(server, name, tls=tls)
    if login is not None:
        after_login(sock, login)
    before = rss()
    sent, peak = flood(sock, line)
    sock.close()
    assert peak - before < GROWTH, f"{case}: {sent} bytes sent, RSS grew {(peak - before) >> 20} MB"
    time.sleep(0.5)                                 # the server sees the close
    assert rss() < before * 1.10, f"{case}: RSS {rss() >> 20} MB after, {before >> 20} MB before"
    other = connect(server, name, tls=tls)          # and it serves the next client at once
    other.close()
