"""Logging: one line per event on stdout, each carrying the session id and client IP.

Why: operators grep logs by IP ("what happened to 203.0.113.7 at 10:14?") and by session
("everything this connection did").  Every protocol logs through ``SessionLog`` so both
are always there, in the same place on the line.
"""

from __future__ import annotations

import secrets
import sys

from twisted.logger import (
    FilteringLogObserver, LogLevel, LogLevelFilterPredicate, Logger, globalLogBeginner,
    textFileLogObserver,
)


def new_session_id() -> str:
    return secrets.token_hex(5)


class SessionLog:
    """A logger bound to one connection: ``[sid ip]`` prefixes every line."""

    def __init__(self, namespace: str, session: str, client_ip: str):
        self._log = Logger(namespace=namespace)
        self.session = session
        self.client_ip = client_ip

    def _emit(self, level: LogLevel, fmt: str, kwargs) -> None:
        self._log.emit(level, "[{session} {client_ip}] " + fmt, session=self.session,
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
        self._log.failure("[{session} {client_ip}] " + fmt, failure=failure,
                          session=self.session, client_ip=self.client_ip, **kwargs)


def start_stdout_logging(level: str = "info") -> None:
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    observer = FilteringLogObserver(textFileLogObserver(sys.stdout), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
