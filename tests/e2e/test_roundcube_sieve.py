"""Roundcube's managesieve plugin against mailstack: a customer sets up a filter and an
out-of-office reply in the browser, and mail arriving afterwards follows them (issue 19).

Why: the plugin (Debian ``roundcube-plugins``) is how most of our customers will meet
Sieve.  It speaks ManageSieve through PEAR Net_Sieve (STARTTLS, AUTHENTICATE PLAIN,
LISTSCRIPTS, GETSCRIPT, PUTSCRIPT, SETACTIVE) and writes the script itself from its forms:
what we run at delivery is what *it* generates, not a script written by hand.  A real
Roundcube is served by ``php -S`` and driven over HTTP (tests/support/roundcube.py): the
Filters page, the framed new-filter form with a second action row added by the + button,
and the Out of Office form, each posted with the request token as the browser does.

Two halves: the first asserts what the plugin stored on our server (the active script with
the rule and the vacation, read back with the store) and that its ManageSieve conversation
(``managesieve_debug``, logs/sieve.log) went through; the second sends mail over port 25
and checks, with imaplib and the outbound queue, that the school's mail was filed into
School unanswered and another sender's mail kept in INBOX and answered from the null
sender.  Skipped when Roundcube, its managesieve plugin or php is not installed.
Standards: RFC 5804 (ManageSieve), RFC 5228 (fileinto, address, stop), RFC 5230 and
RFC 3834 (vacation: null envelope sender, Auto-Submitted: auto-replied).
"""

from __future__ import annotations

import email
import imaplib
import smtplib
import ssl
from email import policy

import pytest
from sqlalchemy import select

from mailstack.store import queue, sieve_scripts
from mailstack.store.schema import outbound_messages
from tests.support import databases, reactor as reactor_thread, roundcube
from tests.support.roundcube_managesieve import SieveWebmail, managesieve_settings
from tests.support.roundcube_managesieve import missing as plugin_missing
from tests.support.server import DOMAIN, HOSTNAME, RunningServer, base_config, merge

pytestmark = pytest.mark.e2e

_why_not = roundcube.missing() or plugin_missing()
if _why_not:
    pytest.skip(f"Roundcube cannot run: {_why_not}", allow_module_level=True)

PASSWORD = "roundcube sieve pw"
ANN = f"ann@{DOMAIN}"
SCHOOL, OTHER = "school@remote.test", "carol@remote.test"
# Not only ASCII: script literals are counted in octets both ways (RFC 5804 §4).
AWAY_SUBJECT = "Away until Monday – Grüße"
AWAY_TEXT = "I am away until Monday; your message is waiting for me. Grüße, Änn"
LISTENERS = {"listeners": [
    {"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
    {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
    {"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"},
    {"name": "sieve", "protocol": "sieve", "port": 0, "tls": "starttls"},
]}
# The filter as a customer fills the compact form: From, modifier "address" (all parts),
# "is", the school's address; "Move message to" School; + "Stop evaluating rules".
FILTER = {"_name": "School", "_join": "anyof", "_header[0]": "from", "_rule_op[0]": "is",
          "_rule_target[0]": [SCHOOL], "_rule_mod[0]": "address", "_rule_mod_type[0]": "all",
          "_action_type[0]": "fileinto", "_action_mailbox[0]": "School"}
# Out of Office: on, once a week per sender, for ann's address, after the School filter
# (``vacation_after`` is the index of the rule it follows; the School filter is the first).
VACATION = {"vacation_subject": AWAY_SUBJECT, "vacation_reason": AWAY_TEXT,
            "vacation_status": "on", "vacation_interval": "7", "vacation_addresses": [ANN],
            "vacation_after": "0", "vacation_action": "keep"}


@pytest.fixture(scope="module")
def mail(certs, tmp_path_factory):
    """One server on SQLite with ann and her School folder."""
    tmp = tmp_path_factory.mktemp("roundcube-sieve-server")
    reactor_thread.ensure_running()
    with databases.fresh_database("sqlite", tmp) as url:
        server = RunningServer(merge(base_config(url, certs, tmp / "state"), LISTENERS),
                               base_dir=str(tmp)).start()
        try:
            server.ann = server.add_account(ANN, PASSWORD)
            server.context = ssl.create_default_context(cafile=str(certs.ca))
            client = imap(server)
            assert client.create("School")[0] == "OK"
            assert client.subscribe("School")[0] == "OK"      # as Roundcube would
            client.logout()
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def webmail_server(mail, certs, tmp_path_factory):
    sieve = managesieve_settings(f"tls://127.0.0.1:{mail.port('sieve')}",
                                 ca=certs.ca, peer_name=HOSTNAME)
    rc = roundcube.start(tmp_path_factory.mktemp("roundcube-sieve"),
                         imap_host=f"ssl://127.0.0.1:{mail.port('imaps')}",
                         smtp_host=f"tls://127.0.0.1:{mail.port('submission')}",
                         ca=certs.ca, peer_name=HOSTNAME, extra=sieve)
    yield rc
    rc.stop()


@pytest.fixture(scope="module")
def set_up_in_roundcube(webmail_server):
    """What ann does in Settings: open Filters, create the filter, set the vacation."""
    browser = SieveWebmail(webmail_server.url)
    browser.login(ANN, PASSWORD)
    filters = browser.filters()
    saved = browser.create_filter(FILTER, more_actions=[{"_action_type": "stop"}])
    vacation = browser.set_vacation(VACATION)
    shown = browser.vacation_form().values()       # read back from our GETSCRIPT
    return filters, saved, vacation, shown


@pytest.fixture
def logs(webmail_server):
    """Roundcube's ManageSieve conversation (pytest shows it when the test fails)."""
    yield
    print(f"---- Roundcube sieve.log ----\n{webmail_server.log('sieve')[-20000:]}")
    print(f"---- Roundcube errors.log ----\n{webmail_server.log('errors')[-4000:]}")


def imap(server) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=server.context,
                               timeout=10)
    client.login(ANN, PASSWORD)
    return client


def senders_in(server, folder: str) -> list[str]:
    client = imap(server)
    try:
        assert client.select(folder, readonly=True)[0] == "OK"
        _, data = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (FROM)])")
        return [email.message_from_bytes(part[1])["From"] for part in data
                if isinstance(part, tuple)]
    finally:
        client.logout()


def queued_from_null_sender(conn) -> list[bytes]:
    """The bodies of the queued messages whose envelope sender is null ("")."""
    found = conn.execute(select(outbound_messages.c.id)
                         .where(outbound_messages.c.sender == "")).scalars().all()
    return [queue.body(conn, message_id) for message_id in found]


def test_roundcube_creates_the_filter_and_the_vacation_over_managesieve(
        mail, webmail_server, set_up_in_roundcube, logs):
    filters, saved, vacation, shown = set_up_in_roundcube
    assert filters.status == 200 and "Unable to connect to server" not in filters.text
    assert "Filter saved successfully." in saved.text, saved.text[-3000:]
    assert "Out-of-office data saved successfully." in vacation.get("exec", ""), vacation
    assert (shown["vacation_subject"], shown["vacation_reason"], shown["vacation_status"],
            shown["vacation_interval"], shown["vacation_addresses[]"]) == \
        (AWAY_SUBJECT, AWAY_TEXT, "on", "7", ANN), shown
    name, script = mail.db(sieve_scripts.active_script, mail.ann)
    assert name == "roundcube", script
    rule, away = script.index("# rule:[School]"), script.index("vacation :")
    assert 0 < rule < away, script                       # the vacation follows the filter
    school = script[rule:away]
    assert 'address :is "from" "school@remote.test"' in school, script
    assert 'fileinto "School";' in school and "stop;" in school, script
    assert ":days 7" in script[away:] and f'"{ANN}"' in script[away:], script
    assert f':subject "{AWAY_SUBJECT}"' in script[away:] and AWAY_TEXT in script, script
    conversation = webmail_server.log("sieve")
    for command in ("STARTTLS", 'AUTHENTICATE "PLAIN"', "PUTSCRIPT", "SETACTIVE"):
        assert command in conversation, command
    assert not [line for line in conversation.splitlines()
                if "S: NO" in line or "S: BYE" in line], conversation
    # Only PHP warnings: the plugin reads ``_custom_header[0]``, which a browser does not
    # post while the field is disabled (rcube_sieve_engine.php, "array offset on null").
    errors = [line for line in webmail_server.log("errors").splitlines()
              if "PHP Warning" not in line]
    assert errors == []


def test_mail_afterwards_is_filed_and_answered_as_set_in_roundcube(mail, set_up_in_roundcube):
    with smtplib.SMTP("127.0.0.1", mail.port("smtp"), timeout=10) as client:
        for sender, subject, message_id in ((SCHOOL, "Parents' evening", "<evening@remote.test>"),
                                            (OTHER, "Lunch on Friday", "<lunch@remote.test>")):
            message = (f"From: {sender}\r\nTo: {ANN}\r\nSubject: {subject}\r\n"
                       f"Message-ID: {message_id}\r\n"
                       "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\nHello Ann.\r\n")
            assert client.sendmail(sender, [ANN], message.encode()) == {}
    assert senders_in(mail, "School") == [SCHOOL]
    assert senders_in(mail, "INBOX") == [OTHER]
    replies = [email.message_from_bytes(body, policy=policy.default)
               for body in mail.db(queued_from_null_sender)]
    assert [r["To"] for r in replies] == [OTHER]          # the school is filed, unanswered
    [reply] = replies
    assert reply["Subject"] == AWAY_SUBJECT and reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<lunch@remote.test>"
    assert AWAY_TEXT in reply.get_body(("plain",)).get_content()
    assert [(row.sender, row.recipient) for row in mail.db(queue.listing)] == [("", OTHER)]
