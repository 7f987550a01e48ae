"""What outside clients found in delivered mail (issue 15, items 1-3), end to end.

- curl uploads a file as it is: without ``--crlf`` a Unix file arrives with bare LF line
  ends.  Stored as it came, IMAP saw one header and no body; over 998 octets it was refused
  as an over-long line.  Now it is stored with CRLF (``[smtp] bare_newlines = "normalize"``)
  or refused whole (``"reject"``); only CRLF.CRLF ends DATA either way.
- Final delivery adds ``Return-Path:`` (RFC 5321 §4.4), which getmail and POP3 clients
  show as the sender; a relayed copy carries none.
- POP3 ``TOP n`` with n at least the body's line count is exactly RETR.
"""

from __future__ import annotations

import imaplib
import poplib
import shutil
import subprocess

import pytest

from tests.e2e.test_smtp import Raw

pytestmark = pytest.mark.e2e
PASSWORD = "line ends password"
LISTENERS = [{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "none"},
             {"name": "imap", "protocol": "imap", "port": 0, "tls": "none"},
             {"name": "pop3", "protocol": "pop3", "port": 0, "tls": "none"}]
BODY_LINES = [b"First line of the body.", b".a line that starts with a dot",
              b"x" * 300, b"y" * 300, b"z" * 300, b"Last line."]
HEADER_LINES = [b"From: sender@remote.test", b"To: ann@example.test",
                b"Subject: written on Unix"]


@pytest.fixture
def mx(make_server):
    server = make_server(listeners=LISTENERS)
    server.add_account("ann@example.test", PASSWORD)
    return server


def curl_upload(server, message: bytes, tmp_path) -> subprocess.CompletedProcess:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    path = tmp_path / "message.txt"
    path.write_bytes(message)
    return subprocess.run(
        ["curl", "-sS", f"smtp://127.0.0.1:{server.port('smtp')}", "--mail-from",
         "sender@remote.test", "--mail-rcpt", "ann@example.test", "-T", str(path)],
        capture_output=True, text=True, timeout=30)


def imap_fetch(server, items: str) -> list:
    with imaplib.IMAP4("127.0.0.1", server.port("imap")) as client:
        client.login("ann@example.test", PASSWORD)
        client.select("INBOX", readonly=True)
        status, data = client.fetch("1:*", items)
        assert status == "OK", data
        return [part for part in data if isinstance(part, tuple)]


def test_a_unix_file_sent_by_curl_without_crlf_reads_back_whole(mx, tmp_path):
    lf_message = b"\n".join(HEADER_LINES) + b"\n\n" + b"\n".join(BODY_LINES) + b"\n"
    assert len(lf_message) > 998 and b"\r" not in lf_message
    done = curl_upload(mx, lf_message, tmp_path)
    assert done.returncode == 0, done.stderr
    (text,), (header,) = (imap_fetch(mx, "(BODY.PEEK[TEXT])"),
                          imap_fetch(mx, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    # curl stuffs no line after a bare LF: the dot line arrives and is kept as written.
    # It ends the upload with CRLF . CRLF after the file's own LF: one empty line more, as
    # Postfix's "normalize" keeps it too.
    assert text[1] == b"\r\n".join(BODY_LINES) + b"\r\n\r\n"
    assert header[1] == b"Subject: written on Unix\r\n\r\n"


def data_exchange(server, payload: bytes) -> list[bytes]:
    """MAIL, RCPT, DATA, then ``payload`` raw; the replies up to the one after it."""
    raw = Raw(server.port("smtp"))
    got = raw.exchange(b"EHLO client.remote.test", b"MAIL FROM:<sender@remote.test>",
                       b"RCPT TO:<ann@example.test>", b"DATA")
    assert [reply[:3] for reply in got[1:]] == [b"250", b"250", b"354"]
    raw.send(payload)
    got = [raw.reply()]
    raw.send(b"QUIT\r\n")
    got.append(raw.reply())
    raw.close()
    return got


def test_lf_dot_lf_is_content_not_the_end_of_data(mx):
    """The SMTP smuggling split: a second message hidden behind LF.LF stays inside the first."""
    smuggled = (b"Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@remote.test>\r\n"
                b"RCPT TO:<ann@example.test>\r\nDATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\n")
    replies = data_exchange(mx, smuggled)
    assert replies[0].startswith(b"250 ") and replies[1].startswith(b"221")
    (only,) = imap_fetch(mx, "(BODY.PEEK[TEXT])")
    assert only[1] == (b"first\r\n.\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<ann@example.test>"
                       b"\r\nDATA\r\nSubject: two\r\n\r\nsecond\r\n")


def test_a_bare_cr_becomes_a_line_end(mx):
    data_exchange(mx, b"Subject: cr\r\n\r\nleft\rright\r\n.\r\n")
    (only,) = imap_fetch(mx, "(BODY.PEEK[TEXT])")
    assert only[1] == b"left\r\nright\r\n"


def test_reject_mode_refuses_bare_line_ends_whole(make_server):
    server = make_server(listeners=LISTENERS, smtp={"bare_newlines": "reject"})
    server.add_account("ann@example.test", PASSWORD)
    refused = data_exchange(server, b"Subject: lf\n\nbody\r\n.\r\n")
    assert refused[0].startswith(b"554 5.6.0") and b"CRLF" in refused[0]
    clean = data_exchange(server, b"Subject: crlf\r\n\r\nbody\r\n.\r\n")
    assert clean[0].startswith(b"250 ")
    assert len(imap_fetch(server, "(BODY.PEEK[TEXT])")) == 1


def test_final_delivery_adds_return_path_and_top_of_everything_is_retr(mx):
    data_exchange(mx, b"Subject: trace\r\n\r\none\r\ntwo\r\n.\r\n")
    raw = Raw(mx.port("smtp"))                      # the null sender: Return-Path: <>
    raw.exchange(b"EHLO c.remote.test", b"MAIL FROM:<>", b"RCPT TO:<ann@example.test>", b"DATA")
    raw.send(b"Subject: notice\r\n\r\nbounced\r\n.\r\n")
    assert raw.reply().startswith(b"250")
    raw.close()
    client = poplib.POP3("127.0.0.1", mx.port("pop3"), timeout=10)
    client.user("ann@example.test")
    client.pass_(PASSWORD)
    first, second = client.retr(1)[1], client.retr(2)[1]
    assert first[0] == b"Return-Path: <sender@remote.test>"
    assert first[1].startswith(b"Received: from ")
    assert second[0] == b"Return-Path: <>"
    for lines in (2, 3, 50):
        assert client.top(1, lines)[1] == first, lines
    assert client.top(1, 1)[1] == first[:first.index(b"") + 2]
    client.quit()
