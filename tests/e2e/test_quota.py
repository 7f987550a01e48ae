"""A full mailbox is 452 4.2.2 at RCPT and 552 5.2.2 after DATA — never "user unknown"."""

from __future__ import annotations

import smtplib
import subprocess
import sys

import pytest

from mailstack.store import mailboxes

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
    with smtplib.SMTP("127.0.0.1", server.port("smtp")) as c:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            c.sendmail("s@remote.test", ["ann@example.test"], b"Subject: big\r\n\r\n" + b"x" * 3000 + b"\r\n")
        assert refused.value.smtp_code == 552 and b"5.2.2 Mailbox full" in refused.value.smtp_error
        assert c.sendmail("s@remote.test", ["ann@example.test"], b"Subject: s\r\n\r\n" + b"y" * 1500 + b"\r\n") == {}
        with pytest.raises(smtplib.SMTPDataError):      # 600 more do not fit in what is left
            c.sendmail("s@remote.test", ["ann@example.test"], b"Subject: s\r\n\r\n" + b"y" * 600 + b"\r\n")
        assert "1024 bytes" in quota("1K")              # the operator lowers the quota
        c.mail("s@remote.test")
        code, text = c.rcpt("ann@example.test")
    assert code == 452 and text.startswith(b"4.2.2 <ann@example.test>: Mailbox full")
    assert len(server.db(lambda conn: mailboxes.list_messages(
        conn, mailboxes.require_folder(conn, ann, "INBOX").id))) == 1
    assert "unlimited" in quota("none")
