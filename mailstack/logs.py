"""Logging: one line per event on stdout, each carrying the session id and client IP.

Why: operators grep logs by IP ("what happened to 203.0.113.7 at 10:14?") and by session
("everything this connection did").  Every protocol logs through ``SessionLog`` so both
are always there, in the same place on the line.

``--log-format json`` (issue 15, item 17) writes the same events for log shippers
(Vector, Fluent Bit, Promtail, Filebeat): one JSON object per line with ``time`` (ISO 8601,
UTC), ``level``, ``namespace`` and ``message``, the ``session`` and ``client_ip`` of a
session's events as fields of their own (not in the message), the other values the message
names as fields too, and ``traceback`` for a failure.  Only values the text line shows are
written, so JSON reveals nothing the text log does not.

Cost (issue 16): at the default level a message on port 25 logs six lines, and Twisted's
own path for one line (``Logger.emit`` checking its level against every constant, the
filtering observer's per-namespace lookup, ``formatTime`` building a time zone and a
datetime, the formatter's call mapping, a ``flush`` after every line) took a quarter of the
reactor's time under load.  So a ``SessionLog`` line below the level is never built, the
text observer (``TextLines``) writes Twisted's classic format byte for byte but formats the
common line with ``str.format_map`` and the time stamp once per second, and the stream is
flushed on a short timer on the reactor (and at once for warnings, errors, and lines from
other threads) instead of after every line.
"""

from __future__ import annotations

import json
import secrets
import string
import sys
import threading
import time
from datetime import datetime, timezone

from twisted.logger import (
    FileLogObserver, FilteringLogObserver, LogLevel, LogLevelFilterPredicate, Logger,
    formatEvent, formatEventAsClassicLogText, formatTime, globalLogBeginner,
)

SESSION_PREFIX = "[{session} {client_ip}] "
FORMATS = ("text", "json")
LEVELS = tuple(LogLevel.iterconstants())      # debug, info, warn, error, critical
FLUSH_SECONDS = 0.2        # how long an info line may wait in the buffer
FLUSH_LINES = 512          # ... and how many may wait

# The levels a ``SessionLog`` builds events for: all until logging starts with a level.
_wanted = frozenset(LEVELS)


def levels_from(name: str) -> frozenset:
    """The levels at or above the one called ``name``."""
    first = LogLevel.levelWithName(name)
    return frozenset(LEVELS[LEVELS.index(first):])


def new_session_id() -> str:
    return secrets.token_hex(5)


class SessionLog:
    """A logger bound to one connection: ``[sid ip]`` prefixes every line."""

    def __init__(self, namespace: str, session: str, client_ip: str):
        self._log = Logger(namespace=namespace)
        self.session = session
        self.client_ip = client_ip

    def _emit(self, level: LogLevel, fmt: str, kwargs) -> None:
        # What ``Logger.emit`` builds, without its per-event check of the level against
        # every constant; nothing at all for a level nobody writes.  The time stamp is the
        # wall clock, as on every Twisted log event (not business time).
        if level not in _wanted:
            return
        log = self._log
        kwargs.update(session=self.session, client_ip=self.client_ip, log_logger=log,
                      log_level=level, log_namespace=log.namespace, log_source=None,
                      log_format=SESSION_PREFIX + fmt, log_time=time.time())
        log.observer(kwargs)

    def debug(self, fmt: str, **kwargs) -> None:
        self._emit(LogLevel.debug, fmt, kwargs)

    def info(self, fmt: str, **kwargs) -> None:
        self._emit(LogLevel.info, fmt, kwargs)

    def warn(self, fmt: str, **kwargs) -> None:
        self._emit(LogLevel.warn, fmt, kwargs)

    def error(self, fmt: str, **kwargs) -> None:
        self._emit(LogLevel.error, fmt, kwargs)

    def failure(self, fmt: str, failure=None, **kwargs) -> None:
        self._log.failure(SESSION_PREFIX + fmt, failure=failure,
                          session=self.session, client_ip=self.client_ip, **kwargs)


def start_stdout_logging(level: str = "info", log_format: str = "text", reactor=None) -> None:
    """Log events of ``level`` and above to stdout, as text lines or JSON objects.  With
    a ``reactor``, text lines are flushed on its timer (``TextLines``)."""
    global _wanted
    _wanted = levels_from(level)
    if log_format == "json":
        predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
        observer = FilteringLogObserver(FileLogObserver(sys.stdout, json_line), [predicate])
    else:
        observer = TextLines(sys.stdout, level, reactor)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


class TextLines:
    """Twisted's classic text log (``textFileLogObserver``), written cheaply.

    A line is ``<time> [<namespace>#<level>] <message>``, exactly as Twisted writes it; a
    line with a failure, a ``log_system``, a message spanning lines or a format that
    ``str.format_map`` cannot render is left to Twisted's formatter, so nothing changes in
    what operators read.  Lines wait in a list and are written in one piece
    ``FLUSH_SECONDS`` after the first one, by the reactor, or once ``FLUSH_LINES`` wait;
    without a reactor, for a warning or worse, or from another thread (which must not
    touch the reactor's timers), at once, with what waited before them.
    """

    def __init__(self, stream, level: str = "info", reactor=None):
        self.stream, self.reactor = stream, reactor
        self.levels = levels_from(level)
        self._urgent = levels_from("warn")
        self._thread = threading.get_ident()
        self._flush_call = None
        self._waiting: list[str] = []
        self._lock = threading.Lock()      # database threads log too
        self._second, self._stamp = None, ""
        if reactor is not None:
            reactor.addSystemEventTrigger("after", "shutdown", self.flush)

    def __call__(self, event: dict) -> None:
        level = event.get("log_level")
        if level not in self.levels:
            return
        text = self._quick(event, level)
        if text is None:
            text = formatEventAsClassicLogText(event, formatTime=self._time)
            if not text:
                return
        with self._lock:
            self._waiting.append(text)
            many = len(self._waiting) >= FLUSH_LINES
        if (self.reactor is None or level in self._urgent or many
                or threading.get_ident() != self._thread):
            self.flush()
        elif self._flush_call is None:
            self._flush_call = self.reactor.callLater(FLUSH_SECONDS, self.flush)

    def _quick(self, event: dict, level) -> str | None:
        """The line for the common event, or None for Twisted's formatter to write."""
        fmt = event.get("log_format")
        if fmt is None or "log_failure" in event or "log_system" in event:
            return None
        try:
            message = fmt.format_map(event)
        except Exception:
            return None          # e.g. a ``{callable()}`` field: Twisted's syntax
        if not message or "\n" in message:
            return None
        return (f"{self._time(event.get('log_time'))} "
                f"[{event.get('log_namespace', '-')}#{level.name}] {message}\n")

    def _time(self, when) -> str:
        """Twisted's RFC 3339 stamp, built once per second."""
        if when is None:
            return "-"
        second = int(when)
        if second != self._second:
            self._second, self._stamp = second, formatTime(second)
        return self._stamp

    def flush(self) -> None:
        """Write what waits, in one piece, and flush the stream."""
        call, self._flush_call = self._flush_call, None
        if call is not None and call.active() and threading.get_ident() == self._thread:
            call.cancel()
        with self._lock:
            waiting, self._waiting = self._waiting, []
            try:
                if waiting:
                    self.stream.write("".join(waiting))
                self.stream.flush()
            except (OSError, ValueError):
                pass             # stdout closed or gone: nothing left to tell


def json_line(event: dict) -> str:
    """One event as a line of JSON (the ``--log-format json`` formatter)."""
    fmt = event.get("log_format") or ""
    session_event = fmt.startswith(SESSION_PREFIX) and "session" in event
    fields = {name: event[name] for name in _named_fields(fmt)
              if name in event and not name.startswith("log_") and isinstance(event[name], (str, int, float, bool, type(None)))}
    if session_event:
        event = dict(event, log_format=fmt[len(SESSION_PREFIX):])
    level = event.get("log_level")
    record = {
        "time": datetime.fromtimestamp(event.get("log_time", 0), timezone.utc).isoformat(),
        "level": level.name if level is not None else "info",
        "namespace": event.get("log_namespace", ""),
        "message": formatEvent(event),
    }
    record.update((k, v) for k, v in fields.items() if k not in record)
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    return json.dumps(record, ensure_ascii=False, default=str) + "\n"


def _named_fields(fmt: str) -> list[str]:
    """The top-level names a format string refers to: ``{user}`` and ``{user.name}``."""
    try:
        parsed = string.Formatter().parse(fmt)
        return [field.split(".")[0].split("[")[0] for _, field, _, _ in parsed if field]
    except ValueError:
        return []
