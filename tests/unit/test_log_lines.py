"""The text log made cheap (logs.TextLines, issue 16): the same lines as Twisted's
``textFileLogObserver``, the level filter, and when the buffer is flushed."""

from __future__ import annotations

import io
import threading

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, LogPublisher, Logger, textFileLogObserver
from twisted.python.failure import Failure

from mailstack import logs


class Flushes(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushes = 0

    def flush(self):
        self.flushes += 1


def both(emit):
    """What Twisted's observer and ours write for the events ``emit(logger)`` sends."""
    theirs, ours = io.StringIO(), io.StringIO()
    publisher = LogPublisher(textFileLogObserver(theirs), logs.TextLines(ours, "debug"))
    emit(Logger(namespace="mailstack.test", observer=publisher))
    return theirs.getvalue(), ours.getvalue()


class Odd:
    def __repr__(self):
        return "<odd\nobject>"

    def method(self):
        return "called"


@pytest.mark.parametrize("emit", [
    lambda log: log.info("[{session} {client_ip}] EHLO {helo!r}", session="0a1b2c3d4e",
                         client_ip="192.0.2.7", helo="mx.example.net"),
    lambda log: log.warn("queue {id}: {n:>5} tries, {rate:.2f}/s", id="Q1", n=3, rate=1.0 / 3),
    lambda log: log.error("unicode: {text}", text="Grüße ✓"),
    lambda log: log.info("no fields at all"),
    lambda log: log.info("{a.real} and {b[0]}", a=7, b=["first"]),
    lambda log: log.info("two\nlines {x}", x=1),
    lambda log: log.info("a repr over lines: {o!r}", o=Odd()),
    lambda log: log.info("missing {field}"),
    lambda log: log.info("a call {o.method()}", o=Odd()),
    lambda log: log.info("braces {{literal}} {x}", x=2),
    lambda log: log.info(""),
    lambda log: log.emit(LogLevel.info, "system {x}", x=1, log_system="custom"),
    lambda log: log.failure("it broke: {why}", Failure(ValueError("bad")), why="because"),
    lambda log: log.debug("debug {x}", x=None),
    lambda log: log.critical("critical"),
])
def test_every_line_is_what_twisted_would_have_written(emit):
    theirs, ours = both(emit)
    assert ours == theirs


def test_a_session_log_line_is_the_same_as_through_logger_emit():
    theirs, ours = io.StringIO(), io.StringIO()
    publisher = LogPublisher(textFileLogObserver(theirs), logs.TextLines(ours, "debug"))
    session = logs.SessionLog("mailstack.smtp", "0a1b2c3d4e", "192.0.2.7")
    session._log.observer = publisher
    session.info("message {id} stored: {size} bytes", id="X1", size=4096)
    Logger(namespace="mailstack.smtp", observer=publisher).info(
        logs.SESSION_PREFIX + "message {id} stored: {size} bytes", session="0a1b2c3d4e",
        client_ip="192.0.2.7", id="X1", size=4096)
    lines = ours.getvalue().splitlines()
    # the same text but for the time stamps, which may straddle a second
    assert [line.split(" ", 1)[1] for line in lines] == [
        "[mailstack.smtp#info] [0a1b2c3d4e 192.0.2.7] message X1 stored: 4096 bytes"] * 2
    assert ours.getvalue() == theirs.getvalue()


def test_lines_below_the_level_are_not_written():
    out = io.StringIO()
    log = Logger(namespace="mailstack.test", observer=logs.TextLines(out, "warn"))
    log.debug("d")
    log.info("i")
    log.warn("w")
    log.error("e")
    assert [line.split("] ", 1)[1] for line in out.getvalue().splitlines()] == ["w", "e"]


def test_session_lines_below_the_level_are_never_built(monkeypatch):
    events = []
    monkeypatch.setattr(logs, "_wanted", logs.levels_from("warn"))
    session = logs.SessionLog("mailstack.pop3", "0a1b2c3d4e", "192.0.2.7")
    session._log.observer = events.append
    session.debug("d")
    session.info("i")
    session.warn("w {x}", x=1)
    assert [e["log_format"] for e in events] == [logs.SESSION_PREFIX + "w {x}"]
    assert events[0]["log_level"] is LogLevel.warn and events[0]["x"] == 1
    assert events[0]["log_namespace"] == "mailstack.pop3"


def test_info_lines_are_flushed_together_on_the_reactors_timer():
    reactor, out = MemoryReactorClock(), Flushes()
    log = Logger(namespace="mailstack.test", observer=logs.TextLines(out, "info", reactor))
    for n in range(100):
        log.info("line {n}", n=n)
    assert out.flushes == 0 and out.getvalue() == ""    # nothing written yet
    assert len(reactor.getDelayedCalls()) == 1          # one timer, not one per line
    reactor.advance(logs.FLUSH_SECONDS)
    assert out.flushes == 1 and not reactor.getDelayedCalls()
    assert [line.split("] ", 1)[1] for line in out.getvalue().splitlines()] == [
        f"line {n}" for n in range(100)]
    log.info("next")
    assert len(reactor.getDelayedCalls()) == 1


def test_a_long_wait_is_written_before_the_timer():
    reactor, out = MemoryReactorClock(), Flushes()
    log = Logger(namespace="mailstack.test", observer=logs.TextLines(out, "info", reactor))
    for n in range(logs.FLUSH_LINES):
        log.info("line {n}", n=n)
    assert out.flushes == 1 and len(out.getvalue().splitlines()) == logs.FLUSH_LINES
    assert not reactor.getDelayedCalls()                # the timer went with the write


def test_warnings_and_lines_from_other_threads_are_flushed_at_once():
    reactor, out = MemoryReactorClock(), Flushes()
    log = Logger(namespace="mailstack.test", observer=logs.TextLines(out, "info", reactor))
    log.info("before it")
    log.warn("the store is down")
    assert out.flushes == 1 and not reactor.getDelayedCalls()
    assert [line.split("] ", 1)[1] for line in out.getvalue().splitlines()] == [
        "before it", "the store is down"]           # in order, what waited first
    thread = threading.Thread(target=lambda: log.info("from a database thread"))
    thread.start()
    thread.join()
    assert out.flushes == 2 and not reactor.getDelayedCalls()


def test_what_waits_is_flushed_when_the_reactor_shuts_down():
    reactor, out = MemoryReactorClock(), Flushes()
    log = Logger(namespace="mailstack.test", observer=logs.TextLines(out, "info", reactor))
    log.info("last words")
    triggers = reactor.triggers["after"]["shutdown"]
    assert len(triggers) == 1
    callable_, args, kwargs = triggers[0]
    callable_(*args, **kwargs)
    assert out.flushes == 1 and "last words" in out.getvalue()


def test_a_closed_stream_does_not_break_the_flush():
    out = io.StringIO()
    lines = logs.TextLines(out, "info")
    out.close()
    lines.flush()
