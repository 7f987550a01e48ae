"""A crash in the middle of a delivery whose Sieve script files, redirects and answers
(issue 19: "the message and its Sieve actions are either all done or not at all").

``mailstack serve`` runs as its own process; ann's script (installed with ``mailstack
sieve put``) files into a folder it creates, redirects a copy and sends a vacation reply.
The delivery is held inside its transaction by another session's lock -- on PostgreSQL a
lock on ``vacation_replies``, so the folder, the message and the queued mail are written
and the transaction waits at the reply's record; on SQLite (one writer) the whole
database, so it waits for the writer lock -- and the process is killed with SIGKILL while
it waits.  Nothing of it may remain: no folder, no message, nothing queued, no reply
record.  The client never got its 250, so it sends again after the restart, and then
everything is there exactly once.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from mailstack.store.schema import (
    accounts, folders, messages, outbound_messages, vacation_replies,
)
from tests.support.databases import backends, fresh_database
from tests.support.faults import writes_blocked
from tests.support.process import free_ports, wait_for_port, write_config
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
ANN, REMOTE = "ann@example.test", "carol@remote.test"
SCRIPT = ('require ["fileinto", "mailbox", "copy", "vacation"];\n'
          'fileinto :create "Projects";\n'
          'redirect :copy "dave@elsewhere.test";\n'
          'vacation "I am away.";\n')
ROOT = Path(__file__).parents[2]
# This tree's code (``python -m mailstack`` from its root), whatever the environment's
# ``mailstack`` script was installed from.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
MESSAGE = (f"From: {REMOTE}\r\nTo: {ANN}\r\nSubject: before the crash\r\n"
           "Message-ID: <crash@remote.test>\r\n\r\nHello.\r\n").encode()


@pytest.fixture(params=backends())
def db_url(request, tmp_path):
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def node(tmp_path, db_url):
    port = free_ports(1)[0]
    config = write_config(tmp_path / "mailstack.toml", db_url, [("smtp", port, "starttls")],
                          server={"state_dir": "state"},
                          database={"busy_timeout_ms": 60000})
    mailstack = [sys.executable, "-m", "mailstack", "--config", str(config)]
    cli = lambda *args, stdin=None: subprocess.run(                      # noqa: E731
        [*mailstack, *args], input=stdin, capture_output=True, text=True, check=True,
        timeout=60, cwd=ROOT, env=ENV)
    cli("domain", "add", "example.test")
    cli("account", "add", ANN, "--password-stdin", stdin="crash test pw\n")
    cli("sieve", "put", ANN, "away", "-", "--activate", stdin=SCRIPT)
    procs = []

    def start():
        proc = subprocess.Popen([*mailstack, "serve"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=ENV)
        wait_for_port(port, proc)
        procs.append(proc)
        return proc

    yield start, port
    for proc in procs:
        if proc.poll() is None:
            proc.kill()                 # the test is over: no need for a clean stop
            proc.communicate(timeout=20)


def facts(db_url) -> dict:
    """What the delivery left in the database."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            count = lambda query: conn.execute(query).scalar()          # noqa: E731
            return {
                "messages": count(select(func.count()).select_from(
                    messages.join(folders).join(accounts)).where(accounts.c.address == ANN)),
                "projects": count(select(func.count()).select_from(folders)
                                  .where(folders.c.name == "Projects")),
                "queued": count(select(func.count()).select_from(outbound_messages)),
                "replies": count(select(func.count()).select_from(vacation_replies)),
            }
    finally:
        engine.dispose()


def waiting_for_lock(db_url) -> bool:
    """Whether a session waits for a lock on vacation_replies (PostgreSQL)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE NOT granted "
                "AND relation = 'vacation_replies'::regclass")).scalar())
    finally:
        engine.dispose()


def send(port: int, outcome: list) -> None:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.ehlo("mail.remote.test")
            client.sendmail(REMOTE, [ANN], MESSAGE)
            outcome.append("250")
    except (smtplib.SMTPException, OSError) as error:
        outcome.append(error)


def test_kill_9_mid_delivery_leaves_nothing_and_the_retry_does_everything_once(node, db_url):
    start, port = node
    proc = start()
    outcome: list = []
    with writes_blocked(db_url, tables=("vacation_replies",)):
        sender = threading.Thread(target=send, args=(port, outcome))
        sender.start()
        if db_url.startswith("postgresql"):
            eventually(lambda: waiting_for_lock(db_url), what="the delivery waits in its "
                       "transaction")
        else:
            time.sleep(1.5)                  # the delivery waits for the writer lock
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=20)
        sender.join(30)
    assert outcome and outcome[0] != "250"            # the client never heard 250
    assert facts(db_url) == {"messages": 0, "projects": 0, "queued": 0, "replies": 0}

    start()
    outcome.clear()
    send(port, outcome)                               # the client's retry
    assert outcome == ["250"]
    assert facts(db_url) == {"messages": 1, "projects": 1, "queued": 2, "replies": 1}
