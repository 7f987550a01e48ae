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
"""

from __future__ import annotations

import json
import secrets
import string
import sys
from datetime import datetime, timezone

from twisted.logger import (
    FileLogObserver, FilteringLogObserver, LogLevel, LogLevelFilterPredicate, Logger,
    formatEvent, globalLogBeginner, textFileLogObserver,
)

SESSION_PREFIX = "[{session} {client_ip}] "
FORMATS = ("text", "json")


def new_session_id() -> str:
    return secrets.token_hex(5)


class SessionLog:
    """A logger bound to one connection: ``[sid ip]`` prefixes every line."""

    def __init__(self, namespace: str, session: str, client_ip: str):
        self._log = Logger(namespace=namespace)
        self.session = session
        self.client_ip = client_ip

    def _emit(self, level: LogLevel, fmt: str, kwargs) -> None:
        self._log.emit(level, SESSION_PREFIX + fmt, session=self.session,
                       client_ip=self.client_ip, **kwargs)

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


def start_stdout_logging(level: str = "info", log_format: str = "text") -> None:
    """Log events of ``level`` and above to stdout, as text lines or JSON objects."""
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    writer = (FileLogObserver(sys.stdout, json_line) if log_format == "json"
              else textFileLogObserver(sys.stdout))
    observer = FilteringLogObserver(writer, [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


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
