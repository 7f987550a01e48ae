"""The migration report counts who still relays through POP-before-SMTP, who sends passwords
in the clear, and who still has a legacy hash — from a population of real clients."""

from __future__ import annotations

import json
import smtplib
import ssl
import subprocess
import sys

import pytest
from passlib.hash import md5_crypt

from tests.e2e.test_pop_before_smtp import POP3From

pytestmark = pytest.mark.e2e
PW = "legacy-pw"


def test_report_counts_each_kind_of_legacy_customer(make_server, certs, db_url, tmp_path):
    server = make_server(
        listeners=[{"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
                   {"name": "pop3", "protocol": "pop3", "port": 0, "tls": "starttls"},
                   {"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"}],
        pop_before_smtp={"enabled": True})
    context = ssl.create_default_context(cafile=str(certs.ca))
    for name in ("window", "cleartext", "modern"):
        server.add_account(f"{name}@example.test", PW)
    from mailstack.store import directory
    server.db(directory.add_account, "oldhash@example.test", md5_crypt.hash(PW), server.now())

    pop = POP3From("127.0.0.1", server.port("pop3"), "127.0.0.41")   # the window customer
    pop.stls(context=context)
    pop.user("window@example.test")
    pop.pass_(PW)
    pop.quit()
    with smtplib.SMTP("127.0.0.1", server.port("submission"), source_address=("127.0.0.41", 0)) as c:
        c.sendmail("window@example.test", ["modern@example.test"],
                   b"Subject: a\r\nUser-Agent: Thunderbird 115.3\r\n\r\nx\r\n")
    pop = POP3From("127.0.0.1", server.port("pop3"), "127.0.0.42")   # password in the clear
    pop.user("cleartext@example.test")
    pop.pass_(PW)
    pop.quit()
    rc = tmp_path / "msmtprc"                                        # the modern customer
    rc.write_text(f"account default\nhost 127.0.0.1\nport {server.port('submission')}\n"
                  f"tls on\ntls_starttls on\ntls_trust_file {certs.ca}\ntls_certcheck on\n"
                  f"tls_host_override localhost\nauth plain\nuser modern@example.test\n"
                  f"password {PW}\nfrom modern@example.test\n")
    rc.chmod(0o600)
    sent = subprocess.run(["msmtp", "-C", str(rc), "window@example.test"],
                          input=b"Subject: b\r\n\r\nx\r\n", capture_output=True, timeout=30)
    assert sent.returncode == 0, sent.stderr

    config = tmp_path / "m.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[pop_before_smtp]\nenabled = true\n'
                      'sunset = 2027-03-01\n[auth]\ntls_cutover = 2027-06-01\n'
                      '[submission]\nhelp_url = "https://help.example.test/smtp"\n')
    done = subprocess.run([sys.executable, "-m", "mailstack", "--config", str(config), "legacy",
                           "report", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["summary"]["cut_off_at_sunset"] == 1
    assert report["summary"]["cut_off_at_cutover"] == 1
    assert report["summary"]["legacy_hashes"] == 1
    rows = {r["account"]: r for r in report["accounts"]}
    assert set(rows) == {"window@example.test", "cleartext@example.test", "oldhash@example.test"}
    assert rows["window@example.test"]["pop_before_smtp_relays"] == 1
    assert rows["window@example.test"]["client_ips"] == "127.0.0.41"
    assert rows["window@example.test"]["mail_program"] == "Thunderbird 115.3"
    assert rows["cleartext@example.test"]["cleartext_protocols"] == "pop3"
    assert rows["cleartext@example.test"]["ports"] == str(server.port("pop3"))
    assert rows["window@example.test"]["ports"] == str(server.port("submission"))
    assert rows["oldhash@example.test"]["legacy_hash"] == "md5_crypt"
    table = subprocess.run([sys.executable, "-m", "mailstack", "--config", str(config), "legacy",
                            "report"], capture_output=True, text=True, timeout=60).stdout
    assert "1 account(s) would be cut off at the POP-before-SMTP sunset" in table

    def legacy(*args):
        done = subprocess.run([sys.executable, "-m", "mailstack", "--config", str(config),
                               "legacy", *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "would notify window@example.test" in legacy("notify", "--phase", "sunset", "--dry-run")
    assert legacy("notify", "--phase", "sunset").startswith("1 notice(s)")
    assert legacy("notify", "--phase", "sunset").startswith("0 notice(s)")      # idempotent
    assert legacy("notify", "--phase", "cutover").startswith("1 notice(s)")
    assert legacy("notify", "--phase", "sunset", "--again").startswith("1 notice(s)")
    import imaplib
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=context)
    client.login("window@example.test", PW)
    client.select("INBOX")
    typ, found = client.search(None, "SUBJECT", '"Action needed"')
    notices = [client.fetch(n, "(BODY.PEEK[])")[1][0][1] for n in found[0].split()]
    client.logout()
    assert len(notices) == 2
    text = notices[0].decode()
    assert "POP before SMTP" in text and "127.0.0.41 using Thunderbird 115.3" in text
    assert "01 March 2027" in text
    assert "https://help.example.test/smtp" in text and "Port:          465 with SSL/TLS" in text
    report = json.loads(legacy("report", "--format", "json"))
    notified = {r["account"]: r["notices"] for r in report["accounts"]}
    assert notified == {"window@example.test": 2, "cleartext@example.test": 1, "oldhash@example.test": 0}
