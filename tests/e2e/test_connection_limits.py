"""Connection limits and deadlines a trickle cannot push back (issue 13, case 4).

Before: no global or per-address cap (400 idle IMAP connections left a new SMTP client with
an empty reply), unauthenticated IMAP got the 30-minute post-login timeout, and one line
every 8 s kept any session open for ever.  Now each listener admits connections through
``protocols/connection_limits.py`` and refuses with its protocol's "too many connections"
reply; POP3 and IMAP must log in within 60 s however busy the client keeps them; DATA and
IMAP literals must arrive at a minimum rate; endless NOOPs end the SMTP session.
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import time

import pytest

pytestmark = pytest.mark.e2e
PASSWORD = "limits pw"
GREETING = {"smtp": b"220 ", "pop3": b"+OK", "imap": b"* OK"}
TOO_MANY = {"smtp": b"421 4.7.0 ", "pop3": b"-ERR [SYS/TEMP] Too many connections from your",
            "imap": b"* BYE [UNAVAILABLE] Too many connections from your"}


@pytest.fixture
def server(make_server):
    server = make_server(listeners=[{"protocol": "smtp", "port": 0, "name": "smtp"},
                                    {"protocol": "pop3", "port": 0, "name": "pop3"},
                                    {"protocol": "imap", "port": 0, "name": "imap"}],
                         limits={"imap": {"per_user": 3}})
    server.add_account("ann@example.test", PASSWORD)
    return server


def open_raw(server, name: str, source: str = "127.0.0.1") -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", server.port(name)), timeout=10,
                                    source_address=(source, 0))
    return sock, read_reply(sock)


def read_reply(sock) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("name", ["smtp", "pop3", "imap"])
def test_the_51st_connection_from_one_address_gets_too_many_connections(server, name):
    held = []
    try:
        for _ in range(50):
            sock, greeting = open_raw(server, name)
            held.append(sock)
            assert greeting.startswith(GREETING[name]), greeting
        sock, reply = open_raw(server, name)
        assert reply.startswith(TOO_MANY[name]), reply
        assert sock.recv(100) == b""                        # and it is closed
        sock.close()
        other, greeting = open_raw(server, name, source="127.0.0.2")   # another address: in
        assert greeting.startswith(GREETING[name])
        other.close()
        held.pop().close()                                  # one leaves: one more gets in
        for _ in range(50):
            sock, greeting = open_raw(server, name)
            if greeting.startswith(GREETING[name]):
                held.append(sock)
                break
            sock.close()
            time.sleep(0.05)                                # the close is seen asynchronously
        else:
            pytest.fail("a connection freed no place")
    finally:
        for sock in held:
            sock.close()


def test_a_flood_of_one_protocol_leaves_room_for_the_others(make_server):
    """Case 4: with room for 100 connections, 400 IMAP attempts (from eight addresses, so the
    per-address limit does not stop them) take at most 80; a new SMTP client is served."""
    server = make_server(listeners=[{"protocol": "smtp", "port": 0, "name": "smtp"},
                                    {"protocol": "imap", "port": 0, "name": "imap"}],
                         limits={"connections": 100})
    held, refused = [], 0
    try:
        for i in range(400):
            sock, greeting = open_raw(server, "imap", source=f"127.0.0.{2 + i % 8}")
            if greeting.startswith(b"* OK"):
                held.append(sock)
            else:
                assert greeting.startswith(b"* BYE [UNAVAILABLE] Too many connections, try")
                refused += 1
                sock.close()
        assert len(held) == 80 and refused == 320
        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
            assert smtp.noop()[0] == 250
        assert time.monotonic() - started < 1.0
    finally:
        for sock in held:
            sock.close()


def test_an_account_logged_in_too_often_is_refused_at_login_until_one_leaves(server):
    sessions = []
    for _ in range(3):
        imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
        imap.login("ann@example.test", PASSWORD)
        sessions.append(imap)
    fourth = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    with pytest.raises(imaplib.IMAP4.error, match=r"\[LIMIT\] Too many connections"):
        fourth.login("ann@example.test", PASSWORD)
    sessions.pop().logout()
    for _ in range(50):
        try:
            fourth.login("ann@example.test", PASSWORD)
            break
        except imaplib.IMAP4.error:
            time.sleep(0.05)
    else:
        pytest.fail("a logout freed no place")
    sessions.append(fourth)
    for imap in sessions:
        imap.logout()


@pytest.mark.parametrize("name", ["pop3", "imap"])
def test_a_busy_connection_that_never_logs_in_is_closed_after_the_login_timeout(server, name):
    sock, _greeting = open_raw(server, name)
    line = b"CAPA\r\n" if name == "pop3" else b"a NOOP\r\n"
    for _ in range(8):                      # one line every 8 s: the idle timer never fires
        sock.sendall(line)
        read_reply_lines(sock, name)
        server.advance(8)
    sock.settimeout(5)
    rest = b""
    while chunk := sock.recv(4096):
        rest += chunk
    assert (b"-ERR No login in time" if name == "pop3" else b"* BYE No login in time") in rest


def read_reply_lines(sock, name: str) -> None:
    """Read one reply to CAPA (multi-line, ends ".") or NOOP (ends with the tagged OK)."""
    end = b"\r\n.\r\n" if name == "pop3" else b"a OK"
    data = b""
    while end not in data:
        data += sock.recv(4096)


def test_a_logged_in_pop3_session_is_not_cut_by_the_login_timeout(server):
    pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    pop.user("ann@example.test")
    pop.pass_(PASSWORD)
    server.advance(120)
    assert pop.stat() == (0, 0)
    pop.quit()


def test_smtp_data_trickled_below_the_minimum_rate_is_cut(server):
    sock, _ = open_raw(server, "smtp")
    for command in (b"EHLO client.example\r\n", b"MAIL FROM:<a@remote.example>\r\n",
                    b"RCPT TO:<ann@example.test>\r\n", b"DATA\r\n"):
        sock.sendall(command)
        reply = b""
        while not reply.endswith(b"\r\n") or reply.split(b"\r\n")[-2][3:4] == b"-":
            reply += sock.recv(4096)
    assert reply.startswith(b"354")
    sock.settimeout(0.01)
    rest = b""
    for _ in range(60):                       # 10 bytes every 8 s: far below 500 bytes/s
        sock.sendall(b"trickle.\r\n")
        time.sleep(0.005)
        server.advance(8)
        try:
            rest = sock.recv(4096)
        except TimeoutError:
            continue
        break
    assert rest.startswith(b"421 4.4.2 ") and b"too slowly" in rest


def test_smtp_data_at_a_slow_but_real_rate_is_taken(server):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.ehlo("client.example")
        smtp.mail("a@remote.example")
        smtp.rcpt("ann@example.test")
        smtp.putcmd("DATA")
        assert smtp.getreply()[0] == 354
        for i in range(40):                    # 8 KB every 8 s: 1 KB/s
            smtp.send(b"Subject: slow\r\n\r\n" if i == 0 else b"x" * 8190 + b"\r\n")
            time.sleep(0.005)
            server.advance(8)
        smtp.send(b".\r\n")
        assert smtp.getreply()[0] == 250


def test_endless_noops_end_the_smtp_session(server):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        for _ in range(100):
            assert smtp.noop()[0] == 250
        code, text = smtp.noop()
        assert code == 421 and b"Too many commands" in text
