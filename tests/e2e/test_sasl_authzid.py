"""AUTH PLAIN with someone else's authorization identity fails on every protocol.

Issue 13, case 8: ``AUTH PLAIN`` carrying ``bob\\0alice\\0alice's password`` logged in as
alice instead of failing; RFC 4616 §2 lets a server accept an authzid only when the
authcid may act as it, and we grant nobody that.  The same identity twice is fine.
"""

from __future__ import annotations

import base64
import imaplib
import poplib
import smtplib

import pytest

pytestmark = pytest.mark.e2e
PASSWORD = "authzid tester pw"
LISTENERS = [
    {"name": "submissions", "protocol": "submission", "port": 0, "tls": "implicit"},
    {"name": "pop3s", "protocol": "pop3", "port": 0, "tls": "implicit"},
    {"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"},
]


@pytest.fixture
def server(make_server):
    server = make_server(listeners=LISTENERS)
    server.add_account("alice@example.test", PASSWORD)
    server.add_account("bob@example.test", PASSWORD)
    return server


def plain(authzid: str) -> str:
    return base64.b64encode(f"{authzid}\0alice@example.test\0{PASSWORD}".encode()).decode()


@pytest.mark.parametrize("authzid, code", [("bob@example.test", 535), ("", 235),
                                           ("Alice@Example.test", 235)])
def test_smtp_auth_plain_as_someone_else_fails(server, authzid, code):
    with smtplib.SMTP_SSL("127.0.0.1", server.port("submissions"), context=server.context,
                          timeout=10) as smtp:
        smtp.ehlo("laptop.test")
        assert smtp.docmd("AUTH", "PLAIN " + plain(authzid))[0] == code


@pytest.mark.parametrize("authzid, ok", [("bob@example.test", False), ("", True)])
def test_pop3_auth_plain_as_someone_else_fails(server, authzid, ok):
    pop = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=server.context, timeout=10)
    try:
        reply = pop._shortcmd("AUTH PLAIN " + plain(authzid))
        assert ok and reply.startswith(b"+OK")
    except poplib.error_proto as e:
        assert not ok and str(e).startswith("b'-ERR [AUTH]")
    finally:
        pop.close()


@pytest.mark.parametrize("authzid, ok", [("bob@example.test", False), ("", True)])
def test_imap_authenticate_plain_as_someone_else_fails(server, authzid, ok):
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=server.context,
                               timeout=10)
    message = f"{authzid}\0alice@example.test\0{PASSWORD}".encode()
    try:
        typ, _ = client.authenticate("PLAIN", lambda _: message)
        assert ok and typ == "OK"
    except imaplib.IMAP4.error as e:
        assert not ok and "AUTHENTICATIONFAILED" in str(e)
    finally:
        client.shutdown()
