"""POP3 maildrop locks across crashes and restarts of a real server process (issue 13, item 7).

A mailstack process is started as operators start it (``mailstack serve``), a user opens
their maildrop with poplib, and the process is killed: with ``kill -9`` and restarted, the
same user must get in at once; with SIGTERM, the lock must be gone when the process has
exited.  A second node on the same database (its own state directory) must neither see its
live locks freed by another node's restart nor wait for a node that stopped.
"""

from __future__ import annotations

import poplib
import signal
import ssl
import subprocess

import pytest
from sqlalchemy import create_engine, select

from mailstack.store.schema import mailbox_locks

from tests.support.databases import backends, fresh_database
from tests.support.process import command, free_ports, serve, stop, wait_for_port, write_config

pytestmark = pytest.mark.e2e
ADDRESS, PASSWORD = "ann@example.test", "correct horse battery"


@pytest.fixture(params=backends())
def db_url(request, tmp_path):
    with fresh_database(request.param, tmp_path) as url:
        yield url


class Node:
    """One ``mailstack serve`` process with its own config and state directory."""

    def __init__(self, tmp_path, name: str, db_url: str):
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.port = free_ports(1)[0]
        self.config = write_config(self.dir / "mailstack.toml", db_url,
                                   [("pop3", self.port, "implicit")],
                                   certs_dir=tmp_path / "certs", server={"state_dir": "state"})
        self.proc = None

    def cli(self, *args, stdin=None):
        return subprocess.run(command(self.config, *args), input=stdin, capture_output=True,
                              text=True, check=True, timeout=60)

    def start(self) -> "Node":
        self.proc = serve(self.config)
        wait_for_port(self.port, self.proc)
        return self

    def kill_9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=20)

    def sigterm(self) -> str:
        return stop(self.proc)

    def pop(self, tmp_path) -> poplib.POP3_SSL:
        context = ssl.create_default_context(cafile=tmp_path / "certs" / "ca.pem")
        client = poplib.POP3_SSL("127.0.0.1", self.port, context=context, timeout=10)
        client.user(ADDRESS)
        client.pass_(PASSWORD)   # raises error_proto on -ERR [IN-USE]
        return client


def locks(db_url):
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(mailbox_locks.c.account_id)).all()
    finally:
        engine.dispose()


@pytest.fixture
def node(tmp_path, db_url):
    first = Node(tmp_path, "a", db_url)
    first.cli("domain", "add", "example.test")
    first.cli("account", "add", ADDRESS, "--password-stdin", stdin=PASSWORD + "\n")
    yield first
    if first.proc is not None and first.proc.poll() is None:
        first.sigterm()


def test_pop3_user_logs_in_at_once_after_kill_9_and_restart(node, tmp_path):
    node.start()
    mid_poll = node.pop(tmp_path)
    assert mid_poll.stat()[0] == 0
    node.kill_9()
    node.start()
    again = node.pop(tmp_path)          # before: -ERR [IN-USE] for 20 minutes
    assert again.stat()[0] == 0
    again.quit()
    mid_poll.close()


def test_sigterm_frees_the_maildrop_locks_before_the_process_exits(node, tmp_path, db_url):
    node.start()
    mid_poll = node.pop(tmp_path)
    assert len(locks(db_url)) == 1
    output = node.sigterm()
    assert node.proc.returncode == 0, output
    assert locks(db_url) == []          # before: the release was queued after the pool stopped
    mid_poll.close()


def test_after_sigterm_another_node_on_the_database_opens_the_maildrop_at_once(
        node, tmp_path, db_url):
    other = Node(tmp_path, "b", db_url)
    node.start()
    mid_poll = node.pop(tmp_path)
    node.sigterm()
    try:
        other.start()
        other.pop(tmp_path).quit()      # before: -ERR [IN-USE]
    finally:
        other.sigterm()
        mid_poll.close()


def test_a_restarting_node_leaves_the_live_locks_of_another_node_alone(node, tmp_path, db_url):
    other = Node(tmp_path, "b", db_url)
    node.start()
    holding = node.pop(tmp_path)
    try:
        other.start()
        other.kill_9()
        other.start()                   # frees only what node "b" held: nothing
        with pytest.raises(poplib.error_proto, match=r"IN-USE"):
            other.pop(tmp_path)
        assert len(locks(db_url)) == 1
        holding.quit()                  # the holder's session was never disturbed
        other.pop(tmp_path).quit()
    finally:
        other.sigterm()
