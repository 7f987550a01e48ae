"""The migration matrix end to end: real poplib opens the window; real smtplib checks what
each port answers.  The whole matrix (SMTP AUTH flag × before/after the POP-before-SMTP sunset
and the TLS cutover × inside/outside the 10-minute window × same/other client IP × ports
25/587/465: 72 cases) is a unit table in tests/unit/test_pop_before_smtp_matrix.py; here are
the representative cases, through the whole server: the window open (587, 465, and port 25),
another IP, the window expired, after the sunset, and the TLS cutover on 587 and 465."""

from __future__ import annotations

import poplib
import smtplib
import socket
from datetime import datetime, timedelta, timezone

import pytest

from mailstack.store import mailboxes, submissions

pytestmark = pytest.mark.e2e
PASSWORD = "legacy customer pw"
HELP = "https://help.example.test/smtp-auth"
LISTENERS = [
    {"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
    {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
    {"name": "submissions", "protocol": "submission", "port": 0, "tls": "implicit"},
    {"name": "pop3", "protocol": "pop3", "port": 0, "tls": "starttls"},
]
CUSTOMER, NEIGHBOUR = "127.0.0.31", "127.0.0.32"
DAY = 86400


def start(make_server, smtp_auth=True):
    now = datetime.now(timezone.utc)
    server = make_server(
        listeners=LISTENERS, submission={"smtp_auth": smtp_auth, "help_url": HELP},
        pop_before_smtp={"enabled": True, "window": 600, "sunset": now + timedelta(days=30)},
        auth={"tls_cutover": now + timedelta(days=60)})
    server.ann = server.add_account("ann@example.test", PASSWORD)
    server.bob = server.add_account("bob@example.test", PASSWORD)
    return server


class POP3From(poplib.POP3):
    """poplib with a chosen source address: distinct 127.x.y.z play distinct customers."""

    def __init__(self, host, port, source, timeout=10):
        self.source = source
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


def _pop_from(server, ip) -> poplib.POP3:
    return POP3From("127.0.0.1", server.port("pop3"), ip)


def pop_login(server, ip, *, tls):
    client = _pop_from(server, ip)
    if tls:
        client.stls(context=server.context)
    client.user("ann@example.test")
    client.pass_(PASSWORD)
    client.quit()


def smtp_from(server, port_name, ip):
    port = server.port(port_name)
    if port_name == "submissions":
        return smtplib.SMTP_SSL("127.0.0.1", port, source_address=(ip, 0),
                                context=server.context, timeout=10)
    return smtplib.SMTP("127.0.0.1", port, source_address=(ip, 0), timeout=10)


def expected(port_name, phase, window, ip_case):
    """(code at MAIL FROM, text fragment) for a client that did not AUTH."""
    if port_name == "smtp":
        return 250, b""                                   # the MX takes mail for us from anyone
    live = window == "inside" and ip_case == "same"
    if live and phase == "before":
        return 250, b""
    if live:
        return 530, b"POP before SMTP) has ended; turn on SMTP authentication"
    return 530, b"5.7.0 Authentication required"


@pytest.mark.parametrize("smtp_auth, phase, window, ip_case, port_name", [
    pytest.param(False, "before", "inside", "same", "submission", id="window-open-587-auth-off"),
    pytest.param(True, "before", "inside", "same", "submissions", id="window-open-465"),
    pytest.param(True, "before", "inside", "same", "smtp", id="window-open-port-25"),
    pytest.param(True, "before", "inside", "other", "submission", id="window-of-another-ip"),
    pytest.param(False, "before", "outside", "same", "submission", id="window-expired"),
    pytest.param(False, "after-sunset", "inside", "same", "submission", id="after-sunset"),
    pytest.param(True, "after-cutover", "inside", "same", "submission", id="tls-cutover-587"),
    pytest.param(True, "after-cutover", "inside", "same", "submissions", id="tls-cutover-465"),
])
def test_matrix(make_server, smtp_auth, phase, window, ip_case, port_name):
    server = start(make_server, smtp_auth)
    server.advance({"before": 0, "after-sunset": 31 * DAY, "after-cutover": 61 * DAY}[phase])
    pop_login(server, CUSTOMER, tls=phase == "after-cutover")
    if window == "outside":
        server.advance(601)
    ip = CUSTOMER if ip_case == "same" else NEIGHBOUR
    code, fragment = expected(port_name, phase, window, ip_case)
    with smtp_from(server, port_name, ip) as client:
        client.ehlo("legacy-pc")
        offers_auth = client.has_extn("auth")
        got, text = client.mail("ann@example.test")
        assert (got, fragment in text) == (code, True), text
        if code == 250:
            rcpt, _ = client.rcpt("bob@example.test")
            assert rcpt == 250
            client.data(b"Subject: legacy\r\n\r\nsent the old way\r\n")
        if code == 530 and b"ended" in text:
            assert HELP.encode() in text
    plaintext_port = port_name != "submissions"
    if port_name == "smtp":
        assert not offers_auth
    else:
        assert offers_auth == (smtp_auth and (not plaintext_port or phase != "after-cutover"))
    if code == 250 and port_name != "smtp":
        (row,) = server.db(submissions.by_method, "pop-before-smtp")
        assert (row.username, row.client_ip) == ("ann@example.test", CUSTOMER)
        body = server.db(lambda c: list(mailboxes.get_bodies(c, [m.id for m in mailboxes.list_messages(
            c, mailboxes.require_folder(c, server.bob, "INBOX").id)]).values()))[0]
        assert b"(POP-before-SMTP sender: ann@example.test)" in body


def test_a_failed_pop_login_opens_no_window(make_server):
    server = start(make_server)
    client = _pop_from(server, CUSTOMER)
    client.user("ann@example.test")
    with pytest.raises(poplib.error_proto):
        client.pass_("wrong")
    client.quit()
    with smtp_from(server, "submission", CUSTOMER) as smtp:
        smtp.ehlo("legacy-pc")
        assert smtp.mail("ann@example.test")[0] == 530


def test_the_window_opened_by_one_process_works_on_another(make_server):
    first = start(make_server)
    second = make_server(
        listeners=[{"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"}],
        pop_before_smtp={"enabled": True, "window": 600})
    pop_login(first, CUSTOMER, tls=True)
    with smtp_from(second, "submission", CUSTOMER) as smtp:
        smtp.ehlo("legacy-pc")
        assert smtp.mail("ann@example.test")[0] == 250


def test_after_the_cutover_pop3_refuses_plaintext_passwords_and_hides_user(make_server):
    server = start(make_server)
    server.advance(61 * DAY)
    client = _pop_from(server, CUSTOMER)
    assert "USER" not in client.capa() and "STLS" in client.capa()
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\].*STLS"):
        client.user("ann@example.test")
    client.stls(context=server.context)
    assert "USER" in client.capa()
    client.user("ann@example.test")
    client.pass_(PASSWORD)
    client.quit()
