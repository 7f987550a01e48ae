"""IDLE when the PostgreSQL LISTEN connection drops (issue 13, case 8).

The server's FolderWatch hears other processes' writes through ``LISTEN mailstack_folders``
on a connection of its own.  When that connection is killed (a DBA's
``pg_terminate_backend``, a failover, a network cut) the operator must see one concise
warning -- not a traceback, not one line per retry -- and IDLE clients must go on hearing
of new mail: by polling while the connection is down, by NOTIFY again once it is back.

The mail comes from "another process": a write on an engine of the test's own, so that the
server's in-process commit listeners cannot be what wakes the client.
"""

from __future__ import annotations

import imaplib
import logging
import os
import re

import pytest
from sqlalchemy import make_url, text
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from mailstack import clock as clocks
from mailstack.store import mailboxes
from mailstack.store.db import make_engine
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PASSWORD = "listen drop password"
LISTENERS = {"listeners": [{"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"}],
             "imap": {"idle_poll": 0.5}}


class Records(logging.Handler):
    """Whatever SQLAlchemy or psycopg say through the standard library's logging."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def log_events():
    events, records = [], Records()
    globalLogPublisher.addObserver(events.append)
    logging.getLogger().addHandler(records)
    yield events, records
    logging.getLogger().removeHandler(records)
    globalLogPublisher.removeObserver(events.append)


def message(n):
    return (f"From: s{n}@remote.test\r\nTo: ann@example.test\r\nSubject: drop {n}\r\n"
            f"Message-ID: <drop{n}@remote.test>\r\n\r\nbody {n}\r\n").encode()


def own_ports_to(port: int) -> set[int]:
    """Local ports of this process's TCP connections to ``port`` (the server runs in-process).

    Why not ``query LIKE 'LISTEN%'`` alone: other test runs may share the PostgreSQL server,
    and their LISTEN connections are not ours to kill.
    """
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == port:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def listen_backends(admin, db_port: int) -> list[int]:
    ports = own_ports_to(db_port)
    with admin.connect() as conn:
        rows = conn.execute(text("SELECT pid, client_port FROM pg_stat_activity "
                                 "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()")).all()
    return [row.pid for row in rows if row.client_port in ports]


def start_idle(client) -> bytes:
    tag = client._new_tag()
    client.send(tag + b" IDLE\r\n")
    assert client.readline().startswith(b"+ ")
    return tag


def wait_for_line(client, pattern: bytes, seconds: float) -> bytes:
    client.sock.settimeout(seconds)
    line = b""
    while not re.search(pattern, line):
        line = client.readline()
        assert line, "connection closed"
    return line.rstrip()


def test_a_dropped_listen_connection_warns_once_polls_and_reconnects(make_server, db_url,
                                                                     log_events, capfd):
    if not db_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite always polls")
    events, records = log_events
    server = make_server(**LISTENERS)
    ann = server.add_account("ann@example.test", PASSWORD)
    watch = server.built.watch
    other_process = make_engine(db_url)      # writes the server's commit listeners never see
    db_port = make_url(db_url).port or 5432

    def deliver(n):
        with other_process.begin() as conn:
            mailboxes.deliver(conn, [ann], message(n), clocks.now(server.clock))

    try:
        eventually(lambda: watch.listening, 10, "LISTEN is up")
        (old_pid,) = eventually(lambda: listen_backends(other_process, db_port), 5,
                                "the server's LISTEN backend is in pg_stat_activity")
        client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=server.context,
                                   timeout=10)
        client.login("ann@example.test", PASSWORD)
        client.select("INBOX")
        tag = start_idle(client)
        first_event = len(events)

        with other_process.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": old_pid}).scalar()
        eventually(lambda: not watch.listening, 5, "the drop is noticed")

        # During the outage: the poll (imap.idle_poll = 0.5 s) tells the client.
        deliver(1)
        assert wait_for_line(client, rb"^\* \d+ EXISTS", 5) == b"* 1 EXISTS"

        # After the reconnect: NOTIFY again (the poll is skipped while LISTEN is up).
        eventually(lambda: watch.listening, 15, "LISTEN is back")
        (new_pid,) = eventually(lambda: listen_backends(other_process, db_port), 5,
                                "a new LISTEN backend")
        assert new_pid != old_pid
        deliver(2)
        assert wait_for_line(client, rb"^\* \d+ EXISTS", 5) == b"* 2 EXISTS"

        client.sock.settimeout(10)
        client.send(b"DONE\r\n")
        assert wait_for_line(client, rb"^" + tag + rb" ", 10).startswith(tag + b" OK")
        client.logout()
    finally:
        other_process.dispose()

    after = events[first_event:]
    texts = [formatEvent(e) for e in after]
    assert not [e for e in after if "log_failure" in e], texts
    assert not [t for t in texts if "Traceback" in t], texts
    assert not [r for r in records.records if r.exc_info or "Traceback" in r.getMessage()]
    assert "Traceback" not in "".join(capfd.readouterr())     # nor a dying thread's
    warnings = [t for e, t in zip(after, texts) if e.get("log_level", LogLevel.info) >= LogLevel.warn]
    assert len(warnings) == 1, warnings
    assert "LISTEN" in warnings[0] and "\n" not in warnings[0].strip(), warnings
