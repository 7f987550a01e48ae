"""Port 25 end to end: smtplib, curl and swaks against the running MX over real TLS."""

from __future__ import annotations

import smtplib
import socket
import subprocess

import pytest

from mailstack.store import directory, mailboxes
from tests.support.faults import writes_blocked

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"


SMTP_ONLY = {"listeners": [{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"}]}


@pytest.fixture
def mx(make_server):
    server = make_server(**SMTP_ONLY)
    server.alice = server.add_account("alice@example.test", PASSWORD)
    server.bob = server.add_account("bob@example.test", PASSWORD)
    return server


def inbox(server, account_id):
    def read(conn):
        folder = mailboxes.require_folder(conn, account_id, "INBOX")
        listed = mailboxes.list_messages(conn, folder.id)
        return list(mailboxes.get_bodies(conn, [m.id for m in listed]).values())
    return server.db(read)


def connect(server, source="127.0.0.1", tls=True) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", server.port("smtp"), source_address=(source, 0),
                          timeout=10)
    client.ehlo("client.remote.test")
    if tls:
        client.starttls(context=server.context)
        client.ehlo("client.remote.test")
    return client


class Raw:
    """A raw socket client for what smtplib will not send."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.banner = self.line()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline().rstrip(b"\r\n")

    def reply(self) -> bytes:
        """A whole (possibly multi-line) reply; returns its last line."""
        while True:
            line = self.line()
            if line[3:4] != b"-":
                return line

    def exchange(self, *commands: bytes) -> list[bytes]:
        """Each command sent in turn, waiting for its reply; the replies' last lines."""
        got = []
        for command in commands:
            self.send(command + b"\r\n")
            got.append(self.reply())
        return got

    def close(self):
        self.sock.close()


MESSAGE = b"From: Sender <sender@remote.test>\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nHello Alice.\r\n.dot line\r\n"


def test_starttls_delivery_is_committed_before_250_and_carries_a_received_header(mx):
    with connect(mx, source="127.0.0.5") as client:
        assert client.has_extn("size") and client.has_extn("pipelining")
        assert client.has_extn("8bitmime") and client.has_extn("enhancedstatuscodes")
        assert not client.has_extn("starttls") and not client.has_extn("auth")
        refused = client.sendmail("sender@remote.test", ["alice@example.test"], MESSAGE)
        assert refused == {}
        stored = inbox(mx, mx.alice)  # read right after the 250: it must be committed
    assert len(stored) == 1
    body = stored[0]
    assert body.startswith(b"Return-Path: <sender@remote.test>\r\n"      # RFC 5321 §4.4
                           b"Received: from client.remote.test ([127.0.0.5])\r\n\tby mx.example.test")
    assert b"with ESMTPS id" in body and b"for <alice@example.test>" in body
    assert body.endswith(MESSAGE.replace(b"\r\n.dot", b"\r\n.dot"))
    assert b"\r\n.dot line\r\n" in body


def test_ehlo_before_tls_offers_starttls_but_no_auth(mx):
    with connect(mx, tls=False) as client:
        assert client.has_extn("starttls") and not client.has_extn("auth")
        code, text = client.docmd("AUTH PLAIN AGZvbwBiYXI=")
        assert code == 502


def test_alias_and_several_recipients_get_one_copy_each(mx):
    mx.db(directory.add_alias, "team@example.test", "alice@example.test")
    mx.db(directory.add_alias, "team@example.test", "bob@example.test")
    with connect(mx) as client:
        client.sendmail("", ["team@example.test", "alice@example.test"], MESSAGE)
    assert len(inbox(mx, mx.alice)) == 1 and len(inbox(mx, mx.bob)) == 1


def test_unknown_local_user_gets_550_511(mx):
    with connect(mx) as client:
        client.mail("sender@remote.test")
        code, text = client.rcpt("nobody@example.test")
    assert code == 550 and text.startswith(b"5.1.1 <nobody@example.test>")


@pytest.mark.parametrize("recipient", [
    "someone@remote.test",
    "someone%remote.test@example.test",
    "remote.test!someone@example.test",
    "@example.test:someone@remote.test",
    '"someone@remote.test"@example.test',
    "someone@[127.0.0.1]",
    "alice@example.test.remote.test",
])
def test_no_open_relay_whatever_the_address_trick(mx, recipient):
    with connect(mx) as client:
        client.mail("sender@remote.test")
        code, text = client.rcpt(recipient)
    assert code == 554 and text.startswith(b"5.7.1 <") and b"Relay access denied" in text


def test_postmaster_unqualified_is_routed_to_the_primary_domain(mx):
    mx.add_account("postmaster@example.test", PASSWORD)
    with connect(mx) as client:
        client.mail("sender@remote.test")
        code, _ = client.docmd("RCPT TO:<Postmaster>")
    assert code == 250


def test_pipelined_commands_get_one_reply_each_in_order(mx):
    raw = Raw(mx.port("smtp"))
    raw.send(b"EHLO pipe.remote.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
             b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    replies = [raw.reply() for _ in range(6)]
    assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"550", b"250", b"354"]
    raw.send(b"Subject: piped\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert raw.reply().startswith(b"250 2.0.0")
    assert raw.reply().startswith(b"221")
    raw.close()
    assert len(inbox(mx, mx.alice)) == 1 and len(inbox(mx, mx.bob)) == 1


def test_starttls_command_injection_is_discarded(mx):
    raw = Raw(mx.port("smtp"))
    raw.send(b"EHLO evil.test\r\n")
    raw.reply()
    raw.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\nRCPT TO:<alice@example.test>\r\n")
    assert raw.reply().startswith(b"220")
    tls = mx.context.wrap_socket(raw.sock, server_hostname="mx.example.test")
    reader = tls.makefile("rb")
    tls.sendall(b"NOOP\r\n")
    assert reader.readline().startswith(b"250 2.0.0")  # nothing pipelined was answered
    tls.sendall(b"MAIL FROM:<s@remote.test>\r\n")
    assert reader.readline().startswith(b"503 5.5.1")  # EHLO state was reset by TLS
    tls.close()


def test_declared_and_actual_size_over_the_limit_get_552_534(make_server):
    server = make_server(smtp={"max_message_size": 2000}, **SMTP_ONLY)
    alice = server.add_account("alice@example.test", PASSWORD)
    raw = Raw(server.port("smtp"))
    raw.send(b"EHLO big.test\r\n")
    raw.reply()
    raw.send(b"MAIL FROM:<s@remote.test> SIZE=5000\r\n")
    assert raw.reply().startswith(b"552 5.3.4")
    raw.send(b"MAIL FROM:<s@remote.test> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    assert [raw.reply()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
    raw.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 100 + b".\r\n")
    assert raw.reply().startswith(b"552 5.3.4")
    raw.send(b"NOOP\r\n")
    assert raw.reply().startswith(b"250")
    raw.close()
    assert inbox(server, alice) == []


def test_overlong_command_unknown_command_and_non_utf8_are_answered_and_serving_continues(mx):
    raw = Raw(mx.port("smtp"))
    raw.send(b"EHLO " + b"a" * 5000 + b"\r\n")
    assert raw.reply().startswith(b"500 5.5.2")
    raw.send(b"FROB\r\n")
    assert raw.reply().startswith(b"500 5.5.2")
    raw.send(b"EHLO \xff\xfe\r\n")
    assert raw.reply().startswith(b"500 5.6.7")
    raw.send(b"MAIL FROM:<s@remote.test>\r\n")
    assert raw.reply().startswith(b"503 5.5.1")  # the bad EHLOs did not count
    raw.send(b"EHLO ok.test\r\n")
    assert raw.reply().startswith(b"250")
    raw.send(b"MAIL FROM:<s@remote.test> FOO=BAR\r\n")
    assert raw.reply().startswith(b"555 5.5.4")
    raw.send(b"MAIL FROM:<not an address>\r\n")
    assert raw.reply().startswith(b"501 5.1.7")
    raw.send(b"MAIL FROM:<root@gateway>\r\n")         # a single-label domain is valid syntax
    assert raw.reply().startswith(b"250")
    raw.close()
    with connect(mx) as client:
        assert client.noop()[0] == 250


def test_overlong_header_line_refuses_the_message(mx):
    with connect(mx) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("s@remote.test", ["alice@example.test"],
                            b"Subject: " + b"x" * 1200 + b"\r\n\r\nbody\r\n")
        assert refused.value.smtp_code == 552 and b"5.6.0" in refused.value.smtp_error
        assert client.noop()[0] == 250
    assert inbox(mx, mx.alice) == []


def test_disconnect_in_the_middle_of_data_stores_nothing(mx):
    raw = Raw(mx.port("smtp"))
    raw.send(b"EHLO drop.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    assert [raw.reply()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
    raw.send(b"Subject: half\r\n\r\nhalf a message\r\n")
    raw.close()
    with connect(mx) as client:
        client.sendmail("s@remote.test", ["bob@example.test"], MESSAGE)
    assert inbox(mx, mx.alice) == [] and len(inbox(mx, mx.bob)) == 1


def test_idle_client_is_closed_with_421_after_the_timeout(mx):
    raw = Raw(mx.port("smtp"))
    mx.advance(mx.config.smtp.idle_timeout + 1)
    assert raw.reply().startswith(b"421 4.4.2")
    assert raw.file.read() == b""
    raw.close()


def test_store_unavailable_gives_451_and_the_server_recovers(mx, db_url):
    with connect(mx) as client:
        with writes_blocked(db_url):
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail("s@remote.test", ["alice@example.test"], MESSAGE)
            assert refused.value.smtp_code == 451 and b"4.3.0" in refused.value.smtp_error
        assert client.sendmail("s@remote.test", ["alice@example.test"], MESSAGE) == {}
    assert len(inbox(mx, mx.alice)) == 1


def test_curl_sends_over_starttls_verifying_the_ca(mx, certs, tmp_path):
    message = tmp_path / "m.eml"
    message.write_bytes(b"Subject: from curl\r\n\r\ncurl body\r\n")
    done = subprocess.run(
        ["curl", "-sS", "--ssl-reqd", "--cacert", str(certs.ca), "--resolve",
         f"mx.example.test:{mx.port('smtp')}:127.0.0.1",
         f"smtp://mx.example.test:{mx.port('smtp')}/curl.remote.test",
         "--mail-from", "curl@remote.test", "--mail-rcpt", "alice@example.test",
         "-T", str(message)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert b"curl body" in inbox(mx, mx.alice)[0]


def test_swaks_delivers_and_sees_relay_denied(mx, certs):
    base = ["swaks", "--server", "127.0.0.1", "--port", str(mx.port("smtp")), "--tls",
            "--tls-verify", "--tls-ca-path", str(certs.ca),
            "--from", "swaks@remote.test", "--helo", "swaks.remote.test"]
    done = subprocess.run(base + ["--to", "bob@example.test"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(inbox(mx, mx.bob)) == 1
    done = subprocess.run(base + ["--to", "victim@remote.test"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode != 0 and "554 5.7.1 <victim@remote.test>: Relay access denied" in done.stdout
