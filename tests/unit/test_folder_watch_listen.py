"""The PostgreSQL LISTEN thread of FolderWatch, on a scripted engine: one warning per outage
(its first line, no traceback), retries at debug and further apart each time, one info line
when LISTEN is back, a traceback only for a fault that is not a lost connection."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import psycopg
import pytest
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from mailstack.store.watch import Backoff, PostgresListener

DROPPED = psycopg.OperationalError(
    "consuming input failed: server closed the connection unexpectedly\n"
    "\tThis probably means the server terminated abnormally\n"
    "\tbefore or while processing the request.")


class FakeConnection:
    """LISTEN succeeds; ``notices`` arrive, then the connection drops (or stays up)."""

    def __init__(self, notices=(), drops=True, fault=None):
        self.notices, self.drops, self.fault = list(notices), drops, fault
        self.autocommit, self.closed, self.executed = False, False, []

    def execute(self, sql):
        if self.fault is not None:
            raise self.fault
        self.executed.append(sql)

    def notifies(self, timeout):
        while self.notices:
            yield SimpleNamespace(payload=self.notices.pop(0))
        if self.drops:
            raise DROPPED
        time.sleep(0.01)

    def close(self):
        self.closed = True


class FakeEngine:
    def __init__(self, script):
        self.script = list(script)
        self.dialect = SimpleNamespace(loaded_dbapi=psycopg)

    def raw_connection(self):
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return SimpleNamespace(driver_connection=step, detach=lambda: None)


class FakeWatch:
    def __init__(self, script):
        self.db = SimpleNamespace(engine=FakeEngine(script))
        self.reactor = SimpleNamespace(callFromThread=lambda fn, *a, **kw: fn(*a, **kw))
        self.poll_interval = 2.0
        self.listening = False
        self.checks, self.changes, self.downs = [], [], 0
        self.up = threading.Event()

    def _check(self, force=False):
        self.checks.append(force)
        if not self.listening:
            self.downs += 1
        elif not self.db.engine.script:
            self.up.set()                # the last scripted connection is listening

    def changed(self, ids):
        self.changes.append(ids)


@pytest.fixture
def events():
    seen = []
    globalLogPublisher.addObserver(seen.append)
    yield seen
    globalLogPublisher.removeObserver(seen.append)


def ours(events, level):
    return [formatEvent(e) for e in list(events)
            if e.get("log_namespace") == "mailstack.watch" and e.get("log_level") == level]


def run(script, events):
    watch = FakeWatch(script)
    listener = PostgresListener(watch, Backoff(first=0.001, most=0.004))
    listener.start()
    assert watch.up.wait(5), "the last connection never came up"
    listener.stop()
    return watch, listener


def test_backoff_doubles_up_to_a_minute_and_starts_again_once_up():
    backoff = Backoff()
    assert [backoff.next() for _ in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    backoff.reset()
    assert backoff.next() == 1


def test_an_outage_is_one_warning_its_retries_are_debug_and_the_return_is_info(events):
    first, last = FakeConnection(notices=["7", "x"]), FakeConnection(drops=False)
    watch, listener = run([first, DROPPED, OSError("connection refused"), last], events)
    (warning,) = ours(events, LogLevel.warn)
    assert "LISTEN" in warning and "server closed the connection unexpectedly" in warning
    assert "This probably means" not in warning and "\n" not in warning
    assert ours(events, LogLevel.debug) == ["LISTEN reconnect 1 failed: consuming input failed: "
                                            "server closed the connection unexpectedly",
                                            "LISTEN reconnect 2 failed: connection refused"]
    (info,) = ours(events, LogLevel.info)
    assert info.startswith("LISTEN connection restored after")
    assert not [e for e in events if "log_failure" in e]
    assert ours(events, LogLevel.error) == ours(events, LogLevel.critical) == []
    assert watch.changes == [{7}]                      # a payload that is not an id is ignored
    assert first.closed and last.closed and first.autocommit
    assert first.executed == last.executed == ["LISTEN mailstack_folders"]
    assert watch.checks.count(True) == 2               # one catch-up poll per (re)connect
    assert watch.downs == 3                            # and one poll as each try fails
    assert watch.listening                             # stopping is not an outage


def test_a_fault_that_is_not_a_lost_connection_is_logged_once_with_its_traceback(events):
    broken = FakeConnection(fault=AttributeError("a bug of ours"))
    again = FakeConnection(fault=AttributeError("a bug of ours"))
    run([broken, again, FakeConnection(drops=False)], events)
    failures = [e for e in events if "log_failure" in e and e.get("log_namespace") == "mailstack.watch"]
    assert len(failures) == 1 and isinstance(failures[0]["log_failure"].value, AttributeError)
    assert ours(events, LogLevel.warn) == []
    assert len(ours(events, LogLevel.debug)) == 1
