"""A full mailbox is 452 4.2.2 at RCPT and 552 5.2.2 after DATA — never "user unknown"."""

from __future__ import annotations

import smtplib
import subprocess
import sys

import pytest

from mailstack.store import directory, mailboxes

pytestmark = pytest.mark.e2e


def test_quota_set_by_the_cli_is_enforced_by_smtp(make_server, db_url, tmp_path):
    server = make_server(listeners=[{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"}])
    ann = server.add_account("ann@example.test", "quota-pw")
    config = tmp_path / "m.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    def quota(size):
        done = subprocess.run([sys.executable, "-m", "mailstack", "--config", str(config),
                               "account", "quota", "ann@example.test", size],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "2048 bytes" in quota("2K")
    big = b"Subject: big\r\n\r\n" + b"x" * 3000 + b"\r\n"
    with smtplib.SMTP("127.0.0.1", server.port("smtp")) as c:
        # smtplib declares SIZE= in MAIL FROM: the recipient is refused before any data.
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            c.sendmail("s@remote.test", ["ann@example.test"], big)
        code, text = refused.value.recipients["ann@example.test"]
        assert code == 452 and text.startswith(b"4.2.2 <ann@example.test>: Mailbox full")
        c.rset()
        # Without SIZE the size is known only after the data: 552 5.2.2, nothing stored.
        assert c.mail("s@remote.test")[0] == 250 and c.rcpt("ann@example.test")[0] == 250
        code, text = c.data(big)
        assert code == 552 and text.startswith(b"5.2.2 Mailbox full")
        assert c.sendmail("s@remote.test", ["ann@example.test"], b"Subject: s\r\n\r\n" + b"y" * 1500 + b"\r\n") == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused):   # 600 more do not fit in what is left
            c.sendmail("s@remote.test", ["ann@example.test"], b"Subject: s\r\n\r\n" + b"y" * 600 + b"\r\n")
        assert "1024 bytes" in quota("1K")              # the operator lowers the quota
        c.mail("s@remote.test")
        code, text = c.rcpt("ann@example.test")
    assert code == 452 and text.startswith(b"4.2.2 <ann@example.test>: Mailbox full")
    assert len(inbox(server, ann)) == 1
    assert "unlimited" in quota("none")


def inbox(server, account):
    return server.db(lambda conn: mailboxes.list_messages(
        conn, mailboxes.require_folder(conn, account, "INBOX").id))


def test_a_full_mailbox_among_several_recipients_bounces_for_that_one_only(make_server):
    """One DATA reply speaks for every recipient: those with room get the message, the sender
    a bounce naming the full mailbox, and nobody a duplicate from the sender's retry."""
    server = make_server(listeners=[{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"}])
    ann = server.add_account("ann@example.test", "quota-pw")
    bob = server.add_account("bob@example.test", "quota-pw")
    carol = server.add_account("carol@example.test", "quota-pw")
    server.db(directory.set_quota, "ann@example.test", 2048)
    with smtplib.SMTP("127.0.0.1", server.port("smtp")) as c:
        c.ehlo()
        assert c.mail("carol@example.test")[0] == 250           # no SIZE declared
        assert c.rcpt("ann@example.test")[0] == 250 and c.rcpt("bob@example.test")[0] == 250
        code, _ = c.data(b"Subject: report\r\n\r\n" + b"z" * 3000 + b"\r\n")
    assert code == 250
    assert inbox(server, ann) == [] and len(inbox(server, bob)) == 1
    (notice,) = inbox(server, carol)
    dsn = server.db(mailboxes.get_bodies, [notice.id])[notice.id]
    assert b"multipart/report" in dsn and b"Final-Recipient: rfc822; ann@example.test" in dsn
    assert b"Status: 5.2.2" in dsn and b"bob@example.test" not in dsn.split(b"Content-Type: text/rfc822-headers")[0]
