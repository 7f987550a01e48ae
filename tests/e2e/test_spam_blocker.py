"""SPAM Blocker per customer against a real rspamd (issue 18, items 1, 2 and 4).

rspamd is the Debian package, started by the test with its own configuration
(``tests/support/rspamd.py``: ``add header`` from score 3, which a message without Date
and Message-ID reaches; GTUBE is ``reject``).  A loopback DNS server gives the senders'
SPF records, so authentication passes or fails as it would on the Internet.  Mail goes
over TCP with smtplib from 127.0.0.x; what is checked is what the customers see over IMAP
(imaplib): which folder, which Subject, which X-Spam-Status; and the sender's reply.
The settings are made with the ``mailstack`` command an operator types.
"""

from __future__ import annotations

import email
import imaplib
import smtplib

import pytest

from tests.support.cli import Cli
from tests.support.dns_server import DNSServer
from tests.support.rspamd import BINARY, MISSING, Rspamd

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(BINARY is None, reason=MISSING)]
SENDER = "127.0.0.51"
PASSWORD = "spam-blocker-pw"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
LISTENERS = [{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
             {"name": "imap", "protocol": "imap", "port": 0, "tls": "starttls"}]
ALICE, CAROL = "alice@example.test", "carol@example.test"


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    scanner = Rspamd(tmp_path_factory.mktemp("rspamd")).start()
    yield scanner
    scanner.stop()


@pytest.fixture(scope="module")
def nameserver():
    ns = DNSServer().start()
    ns.add("friend.test", "TXT", f"v=spf1 ip4:{SENDER} -all")      # our client may send
    ns.add("bank.test", "TXT", "v=spf1 ip4:192.0.2.1 -all")         # it may not
    ns.add("_dmarc.bank.test", "TXT", "v=DMARC1; p=none")
    ns.exists("spam.test")
    yield ns
    ns.stop()


@pytest.fixture
def mx(make_server, db_url, tmp_path, rspamd, nameserver):
    server = make_server(listeners=LISTENERS, spam={"enabled": True, "url": rspamd.url},
                         dns={"nameservers": [nameserver.address], "timeout": 1})
    for address in (ALICE, CAROL):
        server.add_account(address, PASSWORD)
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    server.desk = Cli(config, in_process=True)
    return server


def message(sender="news@spam.test", subject="Monday", dated=True, body="Hello.\r\n") -> bytes:
    head = f"From: Someone <{sender}>\r\nTo: {ALICE}, {CAROL}\r\n"
    if subject is not None:
        head += f"Subject: {subject}\r\n"
    if dated:
        head += "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@spam.test>\r\n"
    return (head + "\r\n" + body).encode()


def send(server, data: bytes, mail_from="news@spam.test", rcpts=(ALICE, CAROL)):
    """(code, text) of the reply to the end of DATA."""
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), source_address=(SENDER, 0),
                      timeout=60) as client:
        client.ehlo("mail.sender.test")
        client.mail(mail_from)
        for rcpt in rcpts:
            assert client.rcpt(rcpt)[0] == 250
        code, text = client.data(data)
        return code, text.decode()


def folders(server, address) -> dict[str, list[email.message.Message]]:
    """The headers of the messages in INBOX and Junk, as the customer's IMAP client sees."""
    found = {}
    with imaplib.IMAP4("127.0.0.1", server.port("imap")) as imap:
        imap.starttls(ssl_context=server.context)
        imap.login(address, PASSWORD)
        for folder in ("INBOX", "Junk"):
            count = int(imap.select(folder, readonly=True)[1][0])
            found[folder] = []
            for n in range(1, count + 1):
                _, data = imap.fetch(str(n), "(BODY.PEEK[HEADER])")
                found[folder].append(email.message_from_bytes(data[0][1]))
    return found


def test_add_header_spam_goes_to_junk_with_the_blocker_on_and_inbox_with_it_off(mx):
    mx.desk.ok("account", "spam-blocker", ALICE, "on")
    code, _ = send(mx, message(dated=False))
    assert code == 250
    alice, carol = folders(mx, ALICE), folders(mx, CAROL)
    assert alice["INBOX"] == [] and len(alice["Junk"]) == 1
    assert carol["Junk"] == [] and len(carol["INBOX"]) == 1
    for msg in (alice["Junk"][0], carol["INBOX"][0]):
        status = msg["X-Spam-Status"]
        assert status.startswith("Yes, ") and "action=add_header" in status
        assert msg["Subject"] == "Monday"                 # no tag asked for
        assert msg["X-Spam-Symbols"]


def test_clean_mail_stays_in_the_inbox_with_the_blocker_on(mx):
    mx.desk.ok("account", "spam-blocker", ALICE, "on", "--tag-subject")
    assert send(mx, message())[0] == 250
    alice = folders(mx, ALICE)
    assert alice["Junk"] == [] and len(alice["INBOX"]) == 1
    assert alice["INBOX"][0]["X-Spam-Status"].startswith("No, ")
    assert alice["INBOX"][0]["Subject"] == "Monday"


def test_the_spam_tag_is_only_on_the_copy_of_the_account_that_asked(mx):
    mx.desk.ok("account", "spam-blocker", ALICE, "on", "--tag-subject")
    mx.desk.ok("account", "spam-blocker", CAROL, "on")
    assert send(mx, message(dated=False))[0] == 250
    assert send(mx, message(dated=False, subject=None))[0] == 250
    tagged, untagged = folders(mx, ALICE)["Junk"], folders(mx, CAROL)["Junk"]
    assert [m["Subject"] for m in tagged] == ["[SPAM] Monday", "[SPAM]"]
    assert [m["Subject"] for m in untagged] == ["Monday", None]


def test_an_allowed_sender_beats_rspamds_reject(mx):
    mx.desk.ok("account", "spam-blocker", ALICE, "on")
    mx.desk.ok("account", "spam-blocker", CAROL, "on")
    mx.desk.ok("account", "spam-allow", ALICE, "add", "friend.test")
    code, text = send(mx, message("ann@friend.test", body=GTUBE + "\r\n"),
                      mail_from="ann@friend.test")
    assert code == 250, text
    (allowed,) = folders(mx, ALICE)["INBOX"]
    assert "action=reject" in allowed["X-Spam-Status"]          # what rspamd found
    assert "sender=allowed" in allowed["X-Spam-Status"]
    assert folders(mx, CAROL)["Junk"][0]["X-Spam-Status"].startswith("Yes, ")


def test_a_forged_allowed_sender_is_still_refused(mx):
    mx.desk.ok("account", "spam-allow", ALICE, "add", "boss@bank.test")
    # SPF fails for bank.test from our client's address, and so does DMARC for its From:
    code, text = send(mx, message("boss@bank.test", body=GTUBE + "\r\n"),
                      mail_from="boss@bank.test", rcpts=(ALICE,))
    assert code == 550 and text.startswith("5.7.1 "), text


def test_a_blocked_sender_goes_to_junk_even_with_the_blocker_off(mx):
    mx.desk.ok("account", "spam-block", ALICE, "add", "spam.test")
    assert send(mx, message())[0] == 250            # rspamd: no action
    alice, carol = folders(mx, ALICE), folders(mx, CAROL)
    assert alice["INBOX"] == [] and len(alice["Junk"]) == 1
    assert "sender=blocked" in alice["Junk"][0]["X-Spam-Status"]
    assert alice["Junk"][0]["X-Spam-Status"].startswith("No, ")
    assert len(carol["INBOX"]) == 1 and "sender=" not in carol["INBOX"][0]["X-Spam-Status"]


def test_the_commands_show_and_change_the_settings(mx, db_url, tmp_path):
    desk = mx.desk
    assert "spam_blocker: off" in desk.ok("account", "show", ALICE)
    out = desk.ok("account", "spam-blocker", ALICE, "on", "--tag-subject")
    assert "on (probable spam to Junk, subject tagged [SPAM])" in out
    assert "tagged" not in desk.ok("account", "spam-blocker", ALICE, "on", "--no-tag-subject")
    desk.ok("account", "spam-allow", ALICE, "add", "Friend@Example.ORG")
    desk.ok("account", "spam-block", ALICE, "add", "spam.test")
    conflict = desk("account", "spam-block", ALICE, "add", "friend@example.org")
    assert conflict.returncode != 0 and "already on the allow list" in conflict.stderr
    bad = desk("account", "spam-allow", ALICE, "add", "com")
    assert bad.returncode != 0 and "not an address or a domain" in bad.stderr
    assert desk.ok("account", "spam-allow", ALICE, "list").split() == ["PATTERN",
                                                                        "friend@example.org"]
    shown = desk.ok("account", "show", ALICE)
    assert "spam_allow:   friend@example.org" in shown and "spam_block:   spam.test" in shown
    desk.ok("account", "spam-allow", ALICE, "remove", "friend@example.org")
    assert desk.ok("account", "spam-allow", ALICE, "list", "--format", "json").strip() == "[]"
    missing = desk("account", "spam-allow", ALICE, "remove", "friend@example.org")
    assert missing.returncode != 0 and "not on the allow list" in missing.stderr


def test_new_accounts_get_the_configured_default(db_url, tmp_path, mx):
    config = tmp_path / "default-on.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n\n[spam]\nblocker_default = true\n')
    desk = Cli(config)                                   # a real process, as typed
    done = desk("account", "add", "dave@example.test", "--password-stdin", stdin="a long pw 1\n")
    assert done.returncode == 0, done.stderr
    assert "spam_blocker: on" in desk.ok("account", "show", "dave@example.test")
    assert "spam_blocker: off" in desk.ok("account", "show", ALICE)    # made before
