"""The "is my mail program set up right?" page, fetched with curl over HTTPS after real
poplib/smtplib sessions played the customer's mail program from its own 127.x address."""

from __future__ import annotations

import poplib
import re
import smtplib
import socket
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from mailstack.store import logins, spam_settings

pytestmark = pytest.mark.e2e
PASSWORD = "selfcheck pw"
HELP = "https://help.example.test/smtp-auth"
LISTENERS = [
    {"name": "https", "protocol": "http", "port": 0, "tls": "implicit"},
    {"name": "http", "protocol": "http", "port": 0, "tls": "none"},
    {"name": "pop3", "protocol": "pop3", "port": 0, "tls": "starttls"},
    {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
    {"name": "submissions", "protocol": "submission", "port": 0, "tls": "implicit"},
]
LEGACY_IP, MODERN_IP = "127.0.0.41", "127.0.0.42"
CLEARTEXT = "sent your password without encryption: turn on SSL/TLS"
POP_BEFORE_SMTP = "uses POP before SMTP: turn on SMTP authentication"


@pytest.fixture
def web(make_server):
    now = datetime.now(timezone.utc)
    server = make_server(listeners=LISTENERS, submission={"help_url": HELP},
                         pop_before_smtp={"enabled": True, "window": 600,
                                          "sunset": now + timedelta(days=30)},
                         auth={"tls_cutover": now + timedelta(days=60)})
    server.ann = server.add_account("ann@example.test", PASSWORD)
    server.bob = server.add_account("bob@example.test", PASSWORD)
    return server


def curl(web, certs, tmp_path, *args, scheme="https", path="/check", user="ann@example.test:" + PASSWORD):
    headers = tmp_path / "headers.txt"
    port = web.port(scheme)
    auth = ["-u", user] if user else []
    done = subprocess.run(["curl", "-sS", "--cacert", str(certs.ca), "-D", str(headers),
                           "-w", "\n%{http_code}", *auth, *args,
                           f"{scheme}://127.0.0.1:{port}{path}"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    body, _, code = done.stdout.rpartition("\n")
    return int(code), headers.read_text().lower(), body


class POP3From(poplib.POP3):
    """poplib from a chosen 127.x source address: one address per customer."""

    def __init__(self, host, port, source):
        self.source = source
        super().__init__(host, port, 10)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


def pop_login(web, address, ip, *, tls):
    client = POP3From("127.0.0.1", web.port("pop3"), ip)
    if tls:
        client.stls(context=web.context)
    client.user(address)
    client.pass_(PASSWORD)
    client.quit()


def send_through_window(web, address, ip):
    with smtplib.SMTP("127.0.0.1", web.port("submission"), source_address=(ip, 0), timeout=10) as s:
        s.ehlo("old-pc")
        s.sendmail(address, ["bob@example.test"], b"Subject: old way\r\n\r\nhello\r\n")


def send_with_auth(web, address, ip):
    with smtplib.SMTP_SSL("127.0.0.1", web.port("submissions"), source_address=(ip, 0),
                          context=web.context, timeout=10) as s:
        s.login(address, PASSWORD)
        s.sendmail(address, ["ann@example.test"], b"Subject: new way\r\n\r\nhello\r\n")


def rows(body):
    return [line for line in body.splitlines() if line.startswith("<tr><td>")]


def test_legacy_user_sees_cleartext_login_and_pop_before_smtp_with_help(web, certs, tmp_path):
    pop_login(web, "ann@example.test", LEGACY_IP, tls=False)
    send_through_window(web, "ann@example.test", LEGACY_IP)
    code, headers, body = curl(web, certs, tmp_path)
    assert code == 200 and "content-type: text/html; charset=utf-8" in headers
    assert "cache-control: no-store" in headers and "default-src 'none'" in headers
    assert "<script" not in body.lower()
    summary = body.split("<h2>")[0]
    assert "not ready for the change" in summary
    assert CLEARTEXT in summary and POP_BEFORE_SMTP in summary
    assert f'<a href="{HELP}">' in summary and "POP before SMTP stops working on" in summary
    (login,) = [r for r in rows(body) if "<td>POP3</td>" in r]
    assert f"<td>{LEGACY_IP}</td><td>no</td><td>USER</td><td>{CLEARTEXT}</td>" in login
    (send,) = [r for r in rows(body) if "POP before SMTP</td>" in r]
    assert f"<td>{LEGACY_IP}</td><td>POP before SMTP</td><td>no</td><td>{POP_BEFORE_SMTP}</td>" in send
    assert web.now().strftime("%Y-%m-%d") in login and " UTC</td>" in login


def test_modern_user_is_ready_and_sees_only_their_own_rows(web, certs, tmp_path):
    pop_login(web, "bob@example.test", LEGACY_IP, tls=False)          # someone else's habits
    pop_login(web, "ann@example.test", MODERN_IP, tls=True)
    send_with_auth(web, "ann@example.test", MODERN_IP)
    code, _, body = curl(web, certs, tmp_path, path="/check/")
    assert code == 200
    assert "Verdict: ready for the change." in body
    assert 'href="/apple/mail.mobileconfig?emailaddress=' in body   # iPhone and Mac
    assert CLEARTEXT not in body and POP_BEFORE_SMTP not in body and LEGACY_IP not in body
    verdicts = [r.rsplit("<td>", 1)[1] for r in rows(body)]
    assert verdicts == ["ready</td></tr>"] * 3         # POP3 STLS login, SMTP AUTH login, send
    assert any("<td>SMTP</td><td>127.0.0.42</td><td>yes</td><td>PLAIN</td>" in r for r in rows(body))
    assert any("<td>SMTP authentication</td><td>yes</td>" in r for r in rows(body))
    assert "<td>HTTP</td>" not in body          # the page's own login is not the mail program


def test_wrong_password_gets_401_with_the_basic_challenge(web, certs, tmp_path):
    code, headers, body = curl(web, certs, tmp_path, user="ann@example.test:wrong")
    assert code == 401
    assert 'www-authenticate: basic realm="mail settings check"' in headers
    assert "ann@example.test" not in body and "<table" not in body
    code, headers, _ = curl(web, certs, tmp_path, user=None)
    assert code == 401 and "www-authenticate: basic" in headers
    (event,) = web.db(logins.recent, account_id=web.ann)
    assert (event.protocol, event.mechanism, event.tls, event.success) == ("http", "BASIC", True, False)


def test_plain_http_is_refused_without_checking_the_password(web, certs, tmp_path):
    code, headers, body = curl(web, certs, tmp_path, scheme="http")
    assert code == 403 and "https://" in body and "/check" in body
    assert web.db(logins.recent, account_id=web.ann) == []


def test_the_customer_switches_spam_blocker_with_the_pages_form(web, certs, tmp_path):
    code, _, body = curl(web, certs, tmp_path)
    assert code == 200 and "SPAM Blocker is <strong>off</strong>" in body
    token = re.search(r'name="token" value="([0-9a-f]{64})"', body).group(1)
    form = f"token={token}&blocker=on&tag_subject=on"
    code, headers, _ = curl(web, certs, tmp_path, "-d", form)           # curl: a POST
    assert code == 303 and "location: /check?saved=1" in headers
    assert web.db(spam_settings.settings, web.ann) == spam_settings.Settings(True, True)
    assert web.db(spam_settings.settings, web.bob) == spam_settings.Settings(False, False)
    code, _, body = curl(web, certs, tmp_path, path="/check?saved=1")
    assert "SPAM Blocker is <strong>on</strong>" in body and "Settings saved." in body
    # Another site's form, posted by the browser with the customer's cached password:
    code, _, _ = curl(web, certs, tmp_path, "-d", f"token={token}",
                      "-H", "Origin: https://evil.example")
    assert code == 403
    code, _, _ = curl(web, certs, tmp_path, "-d", "blocker=on", user="bob@example.test:" + PASSWORD)
    assert code == 403                                       # bob has no token: unchanged
    code, _, _ = curl(web, certs, tmp_path, "-d", form, scheme="http")
    assert code == 403
    assert web.db(spam_settings.settings, web.ann).blocker
    assert web.db(spam_settings.settings, web.bob) == spam_settings.Settings(False, False)
