"""Roundcube, Debian's webmail, against mailstack: what a customer does in the browser.

Why: webmail is a client nobody here wrote.  Roundcube reads every message through
BODYSTRUCTURE and body sections (``BODY.PEEK[1]``, ``BODY.PEEK[2.1]``…), shows the quota bar
from GETQUOTAROOT, moves to Trash with MOVE and sends through submission with SMTP AUTH,
saving a copy to Sent.  A real Roundcube (``roundcube-core``, ``roundcube-sqlite3``) is served
by ``php -S`` and driven over HTTP through its login form and request token
(tests/support/roundcube.py).  Mail arrives over port 25; what Roundcube sends and moves is
checked with imaplib.  One server on SQLite for the module (this exercises the protocols, not
the backend).  Roundcube logs its IMAP and SMTP conversations in its temp directory; a
failing step prints the IMAP log.  Skipped when Roundcube or php is not installed.
Standards: RFC 3501 (BODYSTRUCTURE, body sections), RFC 9208 (QUOTA), RFC 6851 (MOVE),
RFC 4954 (SMTP AUTH).
"""

from __future__ import annotations

import imaplib
import re
import smtplib
import ssl

import pytest

from mailstack.store import directory
from tests.support import databases, reactor as reactor_thread, roundcube
from tests.support.server import DOMAIN, HOSTNAME, RunningServer, base_config, merge

pytestmark = pytest.mark.e2e

_why_not = roundcube.missing()
if _why_not:
    pytest.skip(f"Roundcube cannot run: {_why_not}", allow_module_level=True)

PASSWORD = "roundcube test pw"
ANN, BOB = f"ann@{DOMAIN}", f"bob@{DOMAIN}"
QUOTA = 50 * 1024 * 1024
LISTENERS = {"listeners": [
    {"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
    {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
    {"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"},
]}
HEAD = ("From: Carol Sender <carol@remote.test>\r\nTo: ann@example.test\r\n"
        "Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n")

# kind -> (subject, the whole message, sentences the opened page must show)
MESSAGES = {
    "plain": ("Harbour lights", HEAD +
              "Subject: Harbour lights\r\nMessage-ID: <plain@remote.test>\r\nMIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
              "The harbour lights were switched on at dusk.\r\n",
              ["The harbour lights were switched on at dusk."]),
    "no-mime": ("Old mill", HEAD +
                "Subject: Old mill\r\nMessage-ID: <nomime@remote.test>\r\n\r\n"
                "Nobody has ground flour at the old mill since 1962.\r\n",
                ["Nobody has ground flour at the old mill since 1962."]),
    "alternative": ("Copper kettle", HEAD +
                    "Subject: Copper kettle\r\nMessage-ID: <alt@remote.test>\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: multipart/alternative; boundary=\"alt-b\"\r\n\r\n"
                    "--alt-b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                    "The plain alternative describes the copper kettle.\r\n"
                    "--alt-b\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n"
                    "<html><body><p>The HTML alternative polishes the copper kettle.</p></body></html>\r\n"
                    "--alt-b--\r\n",
                    ["The HTML alternative polishes the copper kettle."]),
    "attachment": ("March figures", HEAD +
                   "Subject: March figures\r\nMessage-ID: <att@remote.test>\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: multipart/mixed; boundary=\"mix-b\"\r\n\r\n"
                   "--mix-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                   "The March figures are in the attached spreadsheet.\r\n"
                   "--mix-b\r\nContent-Type: application/pdf; name=\"figures.pdf\"\r\n"
                   "Content-Disposition: attachment; filename=\"figures.pdf\"\r\n"
                   "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOfCg==\r\n"
                   "--mix-b--\r\n",
                   ["The March figures are in the attached spreadsheet.",
                    '<span class="attachment-name">figures.pdf</span>']),
    "forwarded": ("Fwd: meeting moved", HEAD +
                  "Subject: Fwd: meeting moved\r\nMessage-ID: <fwd@remote.test>\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: multipart/mixed; boundary=\"fwd-b\"\r\n\r\n"
                  "--fwd-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                  "Forwarding the note from Dave below.\r\n"
                  "--fwd-b\r\nContent-Type: message/rfc822\r\n\r\n"
                  "From: Dave <dave@remote.test>\r\nTo: carol@remote.test\r\nSubject: meeting moved\r\n"
                  "Date: Mon, 23 Nov 2026 09:00:00 +0000\r\nMessage-ID: <inner@remote.test>\r\n"
                  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                  "The Thursday meeting moved to the small room.\r\n"
                  "--fwd-b--\r\n",
                  ["Forwarding the note from Dave below.", "The Thursday meeting moved to the small room."]),
}
DISPOSABLE = ("Weekly newsletter", HEAD + "Subject: Weekly newsletter\r\n"
              "Message-ID: <news@remote.test>\r\n\r\nNothing new this week.\r\n")
# How show.php reports a message it could not read (program/actions/mail/show.php).
ERRORS = ('class="boxerror"', "Could not load message from server")


@pytest.fixture(scope="module")
def mail(certs, tmp_path_factory):
    """One server on SQLite, ann (with a quota) and bob, the messages delivered over port 25."""
    tmp = tmp_path_factory.mktemp("roundcube-server")
    reactor_thread.ensure_running()
    with databases.fresh_database("sqlite", tmp) as url:
        server = RunningServer(merge(base_config(url, certs, tmp / "state"), LISTENERS),
                               base_dir=str(tmp)).start()
        try:
            server.ann = server.add_account(ANN, PASSWORD)
            server.bob = server.add_account(BOB, PASSWORD)
            server.db(directory.set_quota, ANN, QUOTA)
            server.context = ssl.create_default_context(cafile=str(certs.ca))
            with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as c:
                for _, message, _ in [*MESSAGES.values(), (*DISPOSABLE, None)]:
                    assert c.sendmail("carol@remote.test", [ANN], message.encode()) == {}
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def webmail_server(mail, certs, tmp_path_factory):
    rc = roundcube.start(tmp_path_factory.mktemp("roundcube"),
                         imap_host=f"ssl://127.0.0.1:{mail.port('imaps')}",
                         smtp_host=f"tls://127.0.0.1:{mail.port('submission')}",
                         ca=certs.ca, peer_name=HOSTNAME)
    yield rc
    rc.stop()


@pytest.fixture(scope="module")
def webmail(webmail_server):
    browser = webmail_server.client()
    browser.landing = browser.login(ANN, PASSWORD)
    return browser


@pytest.fixture
def imap_log(webmail_server):
    """Roundcube's IMAP conversation during the test (pytest shows it when the test fails)."""
    start = len(webmail_server.log("imap"))
    yield
    print(f"---- Roundcube imap.log ----\n{webmail_server.log('imap')[start:][-20000:]}")
    print(f"---- Roundcube errors.log ----\n{webmail_server.log('errors')[-4000:]}")


def imap(server, user=ANN) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=server.context,
                               timeout=10)
    client.login(user, PASSWORD)
    return client


def subjects_in(server, user, folder) -> list[str]:
    client = imap(server, user)
    try:
        typ, _ = client.select(folder, readonly=True)
        assert typ == "OK"
        typ, data = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return [re.sub(r"(?i)^subject:\s*", "", part[1].decode().strip())
                for part in data if isinstance(part, tuple)]
    finally:
        client.logout()


def test_login_through_the_form_lands_in_the_inbox(webmail, imap_log):
    page = webmail.landing
    assert page.status == 200 and "_task=mail" in page.url, (page.status, page.url)
    env = page.env()
    assert env.get("task") == "mail" and env.get("mailbox") == "INBOX"
    assert webmail.token and env.get("user_id") and ANN in page.text
    # the special folders are recognised as such
    assert {"Sent", "Trash", "Drafts", "Junk"} <= set(env.get("mailboxes", {}))


def test_inbox_lists_every_message(webmail, imap_log):
    listing = webmail.list("INBOX")
    subjects = listing.subjects()
    expected = [subject for subject, _, _ in MESSAGES.values()] + [DISPOSABLE[0]]
    assert set(expected) <= set(subjects), (sorted(subjects), listing.exec[:2000])


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_message_opens_with_its_body(webmail, imap_log, kind):
    subject, _, sentences = MESSAGES[kind]
    uid = webmail.list("INBOX").subjects()[subject]
    page = webmail.show(uid)
    assert page.status == 200
    shown = [e for e in ERRORS if e in page.text]
    assert not shown, f"{kind}: Roundcube shows {shown}"
    for sentence in sentences:
        assert sentence in page.text, f"{kind}: {sentence!r} is not on the page"


def test_send_to_another_account_with_a_copy_in_sent(mail, webmail, imap_log):
    page = webmail.send(BOB, "Lunch on Friday", "Shall we have lunch on Friday at noon?")
    assert page.status == 200 and "sent_successfully" in page.text, page.text[-3000:]
    assert "Lunch on Friday" in subjects_in(mail, BOB, "INBOX")
    assert "Lunch on Friday" in subjects_in(mail, ANN, "Sent")


def test_move_to_trash(mail, webmail, imap_log):
    uid = webmail.list("INBOX").subjects()[DISPOSABLE[0]]
    answer = webmail.move(uid, "Trash")
    assert "Message(s) moved to Trash successfully." in answer.get("exec", ""), answer
    assert DISPOSABLE[0] in subjects_in(mail, ANN, "Trash")
    assert DISPOSABLE[0] not in subjects_in(mail, ANN, "INBOX")
    assert DISPOSABLE[0] in webmail.list("Trash").subjects()


def test_quota_bar_shows_the_account_quota(mail, webmail, imap_log):
    quota = webmail.list("INBOX").quota()
    assert quota is not None, "the list answer sets no quota"
    _, used = mail.db(directory.mailbox_usage, mail.ann)
    # RFC 9208 counts STORAGE in units of 1024 octets; rounding either way is allowed.
    assert quota["total"] == QUOTA // 1024, quota
    assert 0 < used // 1024 <= quota["used"] <= -(-used // 1024), (quota, used)
    assert "/ 50 MB" in quota["title"], quota
