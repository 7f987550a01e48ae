"""Submission's content scan against a real rspamd (issue 18, item 1's optional part):
``[spam] submission`` on, a logged-in customer's GTUBE is refused with a ref the desk
finds; off (the default), it is sent; below the threshold the message goes unchanged;
rspamd down, it goes unchecked.  rspamd is started by the test (tests/support/rspamd.py);
the customer is smtplib over STARTTLS on the submission port with a real login, the
desk is the ``mailstack rejections`` CLI, and rspamd's own log shows what it was told.
"""

from __future__ import annotations

import json

import pytest

from mailstack.store import mailboxes
from tests.e2e.test_submission import client as submission_client
from tests.support.cli import Cli
from tests.support.rspamd import BINARY, MISSING, Rspamd

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(BINARY is None, reason=MISSING)]
PASSWORD = "spam-submission-pw"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
LISTENERS = [{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
             {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"}]


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    scanner = Rspamd(tmp_path_factory.mktemp("rspamd")).start()
    yield scanner
    scanner.stop()


def server_with(make_server, db_url, tmp_path, url, **spam):
    server = make_server(listeners=LISTENERS, spam={"enabled": True, "url": url, **spam})
    server.alice = server.add_account("alice@example.test", PASSWORD)
    server.bob = server.add_account("bob@example.test", PASSWORD)
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    server.desk = Cli(config, in_process=True)
    return server


def message(body: str, extra: str = "") -> bytes:
    return ("From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Monday\r\n"
            "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <monday@example.test>\r\n"
            + extra + "\r\n" + body).encode()


def submit(server, data: bytes):
    """(code, text) of the reply to the end of DATA, sent by bob logged in."""
    with submission_client(server, "submission") as c:
        c.login("bob@example.test", PASSWORD)
        c.mail("bob@example.test")
        assert c.rcpt("alice@example.test")[0] == 250
        code, text = c.data(data)
        return code, text.decode()


def stored(server) -> list[bytes]:
    def bodies(conn):
        info = mailboxes.require_folder(conn, server.alice, "INBOX")
        ids = [m.id for m in mailboxes.list_messages(conn, info.id)]
        return [mailboxes.get_bodies(conn, [i])[i] for i in ids]
    return server.db(bodies)


def rspamd_log(scanner) -> str:
    return (scanner.directory / "log" / "rspamd.log").read_text(errors="replace")


def test_gtube_from_a_customer_is_refused_550_with_a_ref_the_desk_finds(
        make_server, db_url, tmp_path, rspamd):
    server = server_with(make_server, db_url, tmp_path, rspamd.url, submission=True)
    code, text = submit(server, message(GTUBE + "\r\n"))
    assert code == 550 and text.startswith("5.7.1 "), text
    assert "GTUBE" not in text and "score" not in text
    ref = text.rsplit("(ref ", 1)[1].rstrip(")")
    (row,) = json.loads(server.desk("rejections", "--message", ref, "--format", "json").stdout)
    assert (row["check"], row["port"], row["from"]) == (
        "spam-outbound", "submission", "bob@example.test"), row
    assert row["detail"].startswith("account bob@example.test: rspamd reject, score 15.00")
    assert "GTUBE" in row["detail"] and "outbound threshold 15.00" in row["detail"]
    assert stored(server) == []
    # rspamd was told who logged in, and from where
    assert any("user: bob@example.test" in line and "ip: 127.0.0.1" in line
               for line in rspamd_log(rspamd).splitlines())


def test_below_the_threshold_a_message_is_sent_unchanged(make_server, db_url, tmp_path,
                                                         rspamd):
    server = server_with(make_server, db_url, tmp_path, rspamd.url, submission=True)
    sent = message("Dear Alice,\r\n\r\nsee you on Monday.\r\n",
                   extra="X-Spam-Status: written by the customer's program\r\n")
    assert submit(server, sent)[0] == 250
    (body,) = stored(server)
    assert body.endswith(sent)                  # nothing of ours added, nothing removed
    assert body.count(b"X-Spam") == 1


def test_a_threshold_of_ours_refuses_below_rspamds_reject(make_server, db_url, tmp_path,
                                                          rspamd):
    server = server_with(make_server, db_url, tmp_path, rspamd.url, submission=True,
                         submission_threshold=0.5)
    unsigned = message("Dear Alice,\r\n\r\nsee you on Monday.\r\n").replace(
        b"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <monday@example.test>\r\n", b"")
    code, text = submit(server, unsigned)          # MISSING_DATE, MISSING_MID: about 3.5
    assert code == 550, text
    ref = text.rsplit("(ref ", 1)[1].rstrip(")")
    (row,) = json.loads(server.desk("rejections", "--message", ref, "--format", "json").stdout)
    assert "MISSING_MID" in row["detail"] and "rspamd add header" in row["detail"]


def test_with_submission_scanning_off_gtube_from_a_customer_is_sent(
        make_server, db_url, tmp_path, rspamd):
    server = server_with(make_server, db_url, tmp_path, rspamd.url)   # submission: default
    sent = message(GTUBE + "\r\n")
    assert submit(server, sent)[0] == 250
    (body,) = stored(server)
    assert body.endswith(sent)


def test_rspamd_down_a_submitted_message_is_sent_unchecked(make_server, db_url, tmp_path):
    own = Rspamd(tmp_path / "rspamd").start()
    url = own.url
    own.stop()
    server = server_with(make_server, db_url, tmp_path, url, submission=True)
    sent = message(GTUBE + "\r\n")
    assert submit(server, sent)[0] == 250
    (body,) = stored(server)
    assert body.endswith(sent) and b"unchecked" not in body
