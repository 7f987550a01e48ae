"""Submission on 587 (STARTTLS) and 465 (implicit TLS): SMTP AUTH behind its flag, the TLS
cutover, sender ownership, and MX relaying only where configured.  Real smtplib and msmtp."""

from __future__ import annotations

import base64
import smtplib
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from mailstack.store import directory, mailboxes

pytestmark = pytest.mark.e2e
PASSWORD = "s3cret submission pw"
LISTENERS = [
    {"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
    {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
    {"name": "submissions", "protocol": "submission", "port": 0, "tls": "implicit"},
]
MESSAGE = b"From: alice@example.test\r\nSubject: sent\r\n\r\nbody\r\n"


def start(make_server, **overrides):
    server = make_server(listeners=LISTENERS, **overrides)
    server.alice = server.add_account("alice@example.test", PASSWORD)
    server.bob = server.add_account("bob@example.test", PASSWORD)
    return server


@pytest.fixture
def sub(make_server):
    return start(make_server)


def client(server, port_name, source="127.0.0.1", starttls=True):
    port = server.port(port_name)
    if port_name == "submissions":
        c = smtplib.SMTP_SSL("127.0.0.1", port, source_address=(source, 0),
                             context=server.context, timeout=10)
    else:
        c = smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=10)
    c.ehlo("laptop.customer.test")
    if starttls and port_name != "submissions":
        c.starttls(context=server.context)
        c.ehlo("laptop.customer.test")
    return c


def inbox_count(server, account_id):
    def count(conn):
        return len(mailboxes.list_messages(conn, mailboxes.require_folder(conn, account_id, "INBOX").id))
    return server.db(count)


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


@pytest.mark.parametrize("port_name", ["submission", "submissions"])
def test_auth_plain_over_tls_then_send_as_own_address(sub, port_name):
    with client(sub, port_name) as c:
        assert "PLAIN" in c.esmtp_features["auth"] and "LOGIN" in c.esmtp_features["auth"]
        c.login("alice@example.test", PASSWORD)
        assert c.sendmail("alice@example.test", ["bob@example.test"], MESSAGE) == {}
    body = sub.db(lambda conn: mailboxes.get_bodies(conn, [m.id for m in mailboxes.list_messages(
        conn, mailboxes.require_folder(conn, sub.bob, "INBOX").id)]))
    (stored,) = body.values()
    assert b"with ESMTPSA id" in stored and b"(Authenticated sender: alice@example.test)" in stored


def test_auth_login_as_outlook_does(sub):
    with client(sub, "submission") as c:
        c.user, c.password = "alice@example.test", PASSWORD
        code, _ = c.auth("LOGIN", c.auth_login, initial_response_ok=False)
        assert code == 235


def test_wrong_password_malformed_base64_and_cancel(sub):
    with client(sub, "submission") as c:
        code, text = c.docmd("AUTH PLAIN", plain("alice@example.test", "wrong"))
        assert (code, text[:5]) == (535, b"5.7.8")
        code, text = c.docmd("AUTH PLAIN", "%%%not-base64%%%")
        assert (code, text[:5]) == (501, b"5.5.2")
        assert c.docmd("AUTH LOGIN")[0] == 334
        code, text = c.docmd("*")
        assert (code, text[:5]) == (501, b"5.0.0")
        assert c.docmd("AUTH CRAM-MD5")[0] == 504
        code, _ = c.docmd("AUTH PLAIN", plain("alice@example.test", PASSWORD))
        assert code == 235
        assert c.docmd("AUTH PLAIN", plain("alice@example.test", PASSWORD))[0] == 503


def test_unauthenticated_submission_is_refused_530(sub):
    with client(sub, "submission") as c:
        code, text = c.mail("alice@example.test")
    assert code == 530 and text.startswith(b"5.7.0 Authentication required")


def test_sender_must_be_owned_by_the_account_or_its_alias(sub):
    sub.db(directory.add_alias, "info@example.test", "alice@example.test")
    with client(sub, "submission") as c:
        c.login("alice@example.test", PASSWORD)
        code, text = c.mail("bob@example.test")
        assert code == 553 and text.startswith(b"5.7.1 <bob@example.test>")
        assert c.mail("info@example.test")[0] == 250
        c.rset()
        assert c.mail("")[0] == 250


def test_flag_off_hides_auth_and_refuses_it(make_server):
    server = start(make_server, submission={"smtp_auth": False})
    with client(server, "submission") as c:
        assert not c.has_extn("auth")
        assert c.docmd("AUTH PLAIN", plain("alice@example.test", PASSWORD))[0] == 502
        assert c.mail("alice@example.test")[0] == 530


def test_before_the_cutover_plaintext_auth_is_offered_and_recorded(sub):
    from mailstack.store import logins
    with client(sub, "submission", starttls=False) as c:
        assert c.has_extn("auth")
        c.login("alice@example.test", PASSWORD)
    (event,) = sub.db(logins.recent, account_id=sub.alice)
    assert (event.protocol, event.tls, event.success, event.mechanism) == ("smtp", False, True, "PLAIN")


def test_after_the_cutover_no_password_without_tls(make_server):
    cutover = datetime.now(timezone.utc) + timedelta(days=1)
    server = start(make_server, auth={"tls_cutover": cutover})
    server.advance(2 * 86400)
    with client(server, "submission", starttls=False) as c:
        assert not c.has_extn("auth")
        code, text = c.docmd("AUTH PLAIN", plain("alice@example.test", PASSWORD))
        assert code == 538 and text.startswith(b"5.7.11 Encryption required")
        c.starttls(context=server.context)
        c.ehlo("laptop.customer.test")
        assert c.has_extn("auth")
        c.login("alice@example.test", PASSWORD)
    with client(server, "submissions") as c:
        c.login("alice@example.test", PASSWORD)


def test_mx_offers_no_auth_and_no_relay_by_default(sub):
    with client(sub, "smtp") as c:
        assert not c.has_extn("auth")
        assert c.docmd("AUTH PLAIN", plain("alice@example.test", PASSWORD))[0] == 502


def test_starttls_resets_an_authentication_done_before_it(sub):
    with client(sub, "submission", starttls=False) as c:
        c.login("alice@example.test", PASSWORD)
        c.starttls(context=sub.context)
        c.ehlo("laptop.customer.test")
        assert c.mail("alice@example.test")[0] == 530


def test_msmtp_sends_with_auth_over_implicit_tls(sub, certs, tmp_path):
    rc = tmp_path / "msmtprc"
    rc.write_text(f"""defaults
tls on
tls_trust_file {certs.ca}
account customer
host 127.0.0.1
port {sub.port("submissions")}
tls_starttls off
auth plain
user alice@example.test
password {PASSWORD}
from alice@example.test
account default : customer
""")
    rc.chmod(0o600)
    done = subprocess.run(["msmtp", "-C", str(rc), "bob@example.test"], input=MESSAGE,
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert inbox_count(sub, sub.bob) == 1


def test_operator_may_let_an_account_send_as_any_address(sub):
    with client(sub, "submission") as c:
        c.login("alice@example.test", PASSWORD)
        assert c.mail("someone@customer-server.test")[0] == 553
    sub.db(directory.set_send_as_any, "alice@example.test", True)
    with client(sub, "submission") as c:
        c.login("alice@example.test", PASSWORD)
        assert c.mail("someone@customer-server.test")[0] == 250


def test_a_withdrawn_send_as_any_rule_applies_from_the_next_login(sub):
    """The rule is read with the login (no read per message): a session that began under
    it keeps it, the next login does not."""
    sub.db(directory.set_send_as_any, "alice@example.test", True)
    with client(sub, "submission") as c:
        c.login("alice@example.test", PASSWORD)
        sub.db(directory.set_send_as_any, "alice@example.test", False)
        assert c.mail("someone@customer-server.test")[0] == 250
        c.rset()
    with client(sub, "submission") as c:
        c.login("alice@example.test", PASSWORD)
        assert c.mail("someone@customer-server.test")[0] == 553
        c.rset()
        assert c.mail("alice@example.test")[0] == 250


def test_recipients_per_hour_limit_defers_with_451_471_and_resets_after_an_hour(make_server):
    server = start(make_server, submission={"recipients_per_hour": 3})
    with client(server, "submission") as c:
        c.login("alice@example.test", PASSWORD)
        c.sendmail("alice@example.test", ["bob@example.test", "alice@example.test"], MESSAGE)
        c.mail("alice@example.test")
        assert c.rcpt("bob@example.test")[0] == 250
        code, text = c.rcpt("alice@example.test")
        assert code == 451 and text.startswith(b"4.7.1")
        c.rset()
    server.advance(3601)
    with client(server, "submission") as c:
        c.login("alice@example.test", PASSWORD)
        assert c.sendmail("alice@example.test", ["bob@example.test"], MESSAGE) == {}
    from mailstack.store import submissions
    rows = server.db(submissions.by_method, "auth")
    assert [(r.username, r.recipients, r.tls) for r in rows] == [
        ("alice@example.test", 2, True), ("alice@example.test", 1, True)]


def test_mx_relays_for_authenticated_customers_only_when_configured(make_server):
    server = start(make_server, smtp={"mx_relay": "authenticated"})
    with client(server, "smtp", starttls=False) as c:
        assert c.has_extn("auth")                  # before the cutover, as on 587
    with client(server, "smtp") as c:
        assert c.mail("someone@remote.test")[0] == 250
        code, text = c.rcpt("friend@remote.test")
        assert code == 554 and b"Relay access denied" in text     # not without AUTH
        c.rset()
        c.login("alice@example.test", PASSWORD)
        c.mail("alice@example.test")
        assert c.rcpt("friend@remote.test")[0] == 250
        assert c.data(b"Subject: via 25\r\n\r\nx\r\n")[0] == 250
    from mailstack.store import queue
    assert [r.recipient for r in server.db(queue.listing)] == ["friend@remote.test"]


def test_swaks_authenticates_with_login_over_starttls(sub, certs):
    done = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(sub.port("submission")), "--tls",
         "--tls-verify", "--tls-ca-path", str(certs.ca), "--auth", "LOGIN",
         "--auth-user", "alice@example.test", "--auth-password", PASSWORD,
         "--from", "alice@example.test", "--to", "bob@example.test"],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "235 2.7.0" in done.stdout
    assert inbox_count(sub, sub.bob) == 1
