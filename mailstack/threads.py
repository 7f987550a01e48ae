"""A thread pool the reactor hands blocking work to, started and stopped once.

Why: the reactor thread must never wait on SQLAlchemy or on password hashing (ARCHITECTURE
C7), so both run in pools of their own (``store/db.py``: the database's reads and, on
SQLite, its writes; ``realm/hashing.py``: argon2, kept small so that a login flood cannot
starve mail I/O).  Starting and stopping are idempotent here, because ``service.py``
stops what it started, the CLI stops a database it never started, and ``Database`` may
hand the same pool to reads and writes.  A leaf: it imports only Twisted.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool


class WorkerPool:
    """``threads`` threads named ``name``; ``run`` returns a Deferred fired in the reactor."""

    def __init__(self, name: str, threads: int, reactor):
        self.reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=threads, name=name)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._pool.start()
            self._started = True

    def stop(self) -> None:
        """Waits for the work already handed over, then joins the threads."""
        if self._started:
            self._pool.stop()
            self._started = False

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any):
        """``fn(*args, **kwargs)`` in a pool thread; its result or failure in the reactor."""
        return deferToThreadPool(self.reactor, self._pool, fn, *args, **kwargs)
