"""Learning from the customers' Junk moves, against a real rspamd with redis (issue 18).

rspamd runs as Debian ships it with its controller and a redis of the test's own
(``tests/support/rspamd.py``: loopback only, the controller asks for a password, bayes
autolearn off, so only our learns move the counts).  The customer's side is imaplib over
TLS (MOVE; COPY then EXPUNGE); what is checked is what rspamd itself reports
(``rspamc stat``: the BAYES_SPAM and BAYES_HAM learn counts, which rspamd refreshes from
redis every 30 to 60 s, and the controller's ``learned`` counter, which is immediate), our
queue, and ``mailstack spam status`` as the operator runs it.

Each test leaves ``rspamc stat`` up to date (it waits for every count it changed: rspamd
refreshes each statfile on a timer of its own), so the next test's starting counts are
right (the last test changes only what no later test reads); every message is new (rspamd
remembers what it learned, across the SQLite and PostgreSQL runs of a test).  Slow: each
wait for ``rspamc stat`` is 30 to 60 s.
"""

from __future__ import annotations

import imaplib
import json
import socket
import time
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailstack.store import mailboxes, spam_learning
from tests.support.cli import Cli
from tests.support.rspamd import BINARY, MISSING, MISSING_REDIS, PASSWORD, REDIS, Rspamd
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(BINARY is None, reason=MISSING),
              pytest.mark.skipif(REDIS is None, reason=MISSING_REDIS)]
USER, USER_PASSWORD = "ann@example.test", "learning pw"
RETRY = 60.0


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    own = Rspamd(tmp_path_factory.mktemp("rspamd-learning"), learning=True).start()
    yield own
    own.close()


@pytest.fixture
def server(make_server, rspamd, db_url, tmp_path):
    running = make_server(
        listeners=[{"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"},
                   {"name": "metrics", "protocol": "metrics", "port": 0}],
        spam={"enabled": True, "url": rspamd.url, "controller_url": rspamd.controller_url,
              "controller_password": PASSWORD, "learn_retry_interval": RETRY})
    running.ann = running.add_account(USER, USER_PASSWORD)
    config = tmp_path / "desk.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n\n[spam]\nenabled = true\n'
                      f'url = "{rspamd.url}"\ncontroller_url = "{rspamd.controller_url}"\n'
                      f'controller_password = "{PASSWORD}"\n')
    running.desk = Cli(config)
    return running


def deliver(server, subject: str) -> str:
    """A message of its own into the INBOX; its unique token."""
    token = uuid.uuid4().hex
    body = (f"From: Shop <offers@shop.test>\r\nTo: {USER}\r\nSubject: {subject} {token}\r\n"
            f"Message-ID: <{token}@shop.test>\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\n"
            f"Cheap watches and pills, order {token} today, limited offer for you.\r\n")
    server.db(mailboxes.deliver, [server.ann], body.encode(), server.now())
    return token


def imap(server) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=server.context,
                               timeout=30)
    client.login(USER, USER_PASSWORD)
    return client


def uid_of(client, token: str) -> bytes:
    kind, found = client.uid("SEARCH", "SUBJECT", token)
    assert kind == "OK" and found[0], (kind, found)
    return found[0].split()[-1]


def move(client, source: str, token: str, target: str) -> None:
    client.select(source)
    assert client.uid("MOVE", uid_of(client, token), target)[0] == "OK"


def queue(server) -> dict:
    counts, _ = server.db(spam_learning.summary)
    return counts


def learns(server) -> dict:
    """{result: count} of mailstack_spam_learns, from the metrics listener."""
    url = f"http://127.0.0.1:{server.port('metrics')}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {s.labels["result"]: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "mailstack_spam_learns_total"}


def settled(server, expected: dict) -> dict:
    """Wait until the queue holds exactly ``expected`` ({(status, direction): n})."""
    return eventually(lambda: queue(server) == expected and expected, 30,
                      f"learn queue {expected}")


def test_junk_moves_teach_rspamd_spam_then_ham_and_never_twice(server, rspamd):
    before = rspamd.learned()
    moved, copied = deliver(server, "Moved"), deliver(server, "Copied")
    client = imap(server)
    move(client, "INBOX", moved, "Junk")                       # MOVE (RFC 6851)
    client.select("INBOX")
    uid = uid_of(client, copied)
    assert client.uid("COPY", uid, "Junk")[0] == "OK"          # COPY, then EXPUNGE
    client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
    assert client.expunge()[0] == "OK"
    settled(server, {("learned", "spam"): 2})
    rspamd.learned_eventually({"BAYES_SPAM": before["BAYES_SPAM"] + 2})

    move(client, "Junk", moved, "INBOX")                       # not spam after all
    settled(server, {("learned", "spam"): 2, ("learned", "ham"): 1})
    # rspamd remembers it learned this message as spam: it moves it to ham (spam - 1).
    rspamd.learned_eventually({"BAYES_SPAM": before["BAYES_SPAM"] + 1,
                               "BAYES_HAM": before["BAYES_HAM"] + 1})

    learned = rspamd.stat()["learned"]
    move(client, "INBOX", moved, "Junk")                       # again: nothing new
    move(client, "Junk", copied, "Trash")                      # deleting spam is not ham
    client.logout()
    time.sleep(1)
    assert queue(server) == {("learned", "spam"): 2, ("learned", "ham"): 1}
    assert rspamd.stat()["learned"] == learned
    assert learns(server) == {"learned": 3.0}


def test_controller_down_the_learn_waits_and_is_learned_once_rspamd_is_back(server, rspamd):
    before, learned = rspamd.learned(), rspamd.stat()["learned"]
    token = deliver(server, "Later")
    rspamd.stop()                 # rspamd keeps its counters in its stats file meanwhile
    try:
        client = imap(server)
        move(client, "INBOX", token, "Junk")                   # the OK does not wait
        client.logout()
        settled(server, {("pending", "spam"): 1})
        done = server.desk("spam", "status")
        assert done.returncode == 1, done.stderr
        assert "NOT ANSWERING" in done.stdout and "pending 1" in done.stdout
        assert "spam pending after 1 attempt(s): ConnectionRefusedError" in done.stdout
        assert PASSWORD not in done.stdout + done.stderr
    finally:
        rspamd.start()
    server.advance(RETRY / 2)
    time.sleep(1)
    assert queue(server) == {("pending", "spam"): 1}          # not before its time
    server.advance(RETRY / 2 + 1)
    settled(server, {("learned", "spam"): 1})
    assert rspamd.stat()["learned"] == learned + 1              # learned once
    rspamd.learned_eventually({"BAYES_SPAM": before["BAYES_SPAM"] + 1})
    status = json.loads(server.desk.ok("spam", "status", "--format", "json"))
    assert status["rspamd"]["answers"] and status["rspamd"]["version"].startswith("3.")
    assert status["controller"]["statfiles"]["BAYES_SPAM"] == before["BAYES_SPAM"] + 1
    assert status["queue"]["learned_spam"] == 1 and status["queue"]["pending"] == 0
    text = server.desk.ok("spam", "status")
    assert f"BAYES_SPAM learned {before['BAYES_SPAM'] + 1}" in text
    assert "learned spam 1, ham 0; pending 0" in text
    assert learns(server) == {"retry": 1.0, "learned": 1.0}


def test_the_same_spam_moved_by_two_customers_is_learned_once_by_rspamd(server, rspamd):
    """rspamd answers the second learn 208 "already learned": done, not retried."""
    bob = server.add_account("bob@example.test", USER_PASSWORD)
    token = deliver(server, "Both")
    body = server.db(lambda c: mailboxes.get_bodies(c, [m.id for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, server.ann, "INBOX").id)]))
    server.db(mailboxes.deliver, [bob], next(iter(body.values())), server.now())
    learned = rspamd.stat()["learned"]
    for n, user in enumerate((USER, "bob@example.test"), 1):
        client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"),
                                   ssl_context=server.context, timeout=30)
        client.login(user, USER_PASSWORD)
        move(client, "INBOX", token, "Junk")
        client.logout()
        settled(server, {("learned", "spam"): n})
    assert rspamd.stat()["learned"] == learned + 1
    _, problems = server.db(spam_learning.summary)
    assert problems == []                  # "already learned" is no error
    assert learns(server) == {"learned": 1.0, "already_learned": 1.0}


def learning_server(make_server, rspamd, controller_url, password):
    running = make_server(
        listeners=[{"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"},
                   {"name": "metrics", "protocol": "metrics", "port": 0}],
        spam={"enabled": True, "url": rspamd.url, "controller_url": controller_url,
              "controller_password": password, "learn_retry_interval": RETRY})
    running.ann = running.add_account(USER, USER_PASSWORD)
    return running


def test_a_wrong_controller_password_is_retried_and_shown_never_the_password(
        make_server, rspamd):
    server = learning_server(make_server, rspamd, rspamd.controller_url, "not-the-password")
    learned = rspamd.stat()["learned"]
    token = deliver(server, "Denied")
    client = imap(server)
    move(client, "INBOX", token, "Junk")
    client.logout()
    settled(server, {("pending", "spam"): 1})
    _, (problem,) = server.db(spam_learning.summary)
    assert problem.error == "HTTP 401: Unauthorized"
    assert rspamd.stat()["learned"] == learned
    assert learns(server) == {"retry": 1.0}


def test_a_learn_rspamd_never_takes_is_given_up_after_three_days(make_server, rspamd):
    with socket.socket() as closed:                    # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    server = learning_server(make_server, rspamd, url, "")
    token = deliver(server, "Never")
    client = imap(server)
    move(client, "INBOX", token, "Junk")
    client.logout()
    settled(server, {("pending", "spam"): 1})
    server.advance(3 * 86400 + RETRY)
    settled(server, {("failed", "spam"): 1})
    _, (problem,) = server.db(spam_learning.summary)
    assert (problem.status, problem.error) == ("failed", "ConnectionRefusedError")
    assert learns(server) == {"retry": 1.0, "failed": 1.0}
