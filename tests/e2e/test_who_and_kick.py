"""``mailstack who`` and ``mailstack kick`` against a running server (issue 15, item 12)."""

from __future__ import annotations

import imaplib
import json
import poplib
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.e2e
PASSWORD = "who and kick password"
LISTENERS = [{"name": "imap", "protocol": "imap", "port": 0, "tls": "none"},
             {"name": "pop3", "protocol": "pop3", "port": 0, "tls": "none"}]


@pytest.fixture
def server(make_server, db_url, tmp_path):
    server = make_server(listeners=LISTENERS)
    server.add_account("ann@example.test", PASSWORD)
    server.add_account("bob@example.test", PASSWORD)
    server.cli_config = tmp_path / "cli.toml"
    server.cli_config.write_text(f'[database]\nurl = "{db_url}"\n')
    return server


def mailstack(server, *args):
    return subprocess.run([sys.executable, "-m", "mailstack", "--config",
                           str(server.cli_config), *args],
                          capture_output=True, text=True, timeout=60)


def who(server, *args):
    done = mailstack(server, "who", *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def eventually(condition, timeout=15):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_who_lists_each_login_and_kick_ends_only_that_accounts_sessions(server):
    assert mailstack(server, "who").stdout.strip() == "nobody is logged in"
    ann_imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    ann_imap.login("ann@example.test", PASSWORD)
    ann_pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    ann_pop.user("ann@example.test")
    ann_pop.pass_(PASSWORD)
    bob = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    bob.login("bob@example.test", PASSWORD)
    eventually(lambda: len(who(server)) == 3)
    rows = who(server)
    assert sorted((r["user"], r["protocol"], r["ip"]) for r in rows) == [
        ("ann@example.test", "imap", "127.0.0.1"), ("ann@example.test", "pop3", "127.0.0.1"),
        ("bob@example.test", "imap", "127.0.0.1")]
    assert len({r["node"] for r in rows}) == 1 and all(r["since"] for r in rows)
    assert [r["protocol"] for r in who(server, "bob@example.test")] == ["imap"]

    kicked = mailstack(server, "kick", "ann@example.test")
    assert kicked.returncode == 0 and "2 session(s)" in kicked.stdout
    eventually(lambda: [r["user"] for r in who(server)] == ["bob@example.test"])
    with pytest.raises((imaplib.IMAP4.abort, OSError, EOFError)):
        ann_imap.noop()
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        ann_pop.stat()
    assert bob.noop()[0] == "OK"                     # the other account is untouched
    bob.logout()
    eventually(lambda: who(server) == [])            # a logout takes the row with it
    missing = mailstack(server, "kick", "ann@example.test")
    assert missing.returncode == 1 and "no session open" in missing.stderr
