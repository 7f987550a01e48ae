"""Who is waiting on which folder, and how they hear that it changed.

Why a service of its own: IDLE (RFC 2177) needs a push when any session of any process
writes to a folder.  Three sources feed one ``changed(folder_ids)``:

* commits made by this process (``Database.commit_listeners``): immediate;
* PostgreSQL ``NOTIFY`` from every process sharing the database (a LISTEN connection in a
  thread of its own): immediate, typically a few milliseconds;
* polling ``folders.modseq`` of the watched folders, one query per ``imap.idle_poll``
  seconds for the whole process: how SQLite (which has no NOTIFY) learns of other
  processes' writes, and the fallback while the PostgreSQL LISTEN connection is down.

Polling is I/O scheduling, not business time, so it runs on the reactor, not the clock.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from sqlalchemy.exc import DBAPIError
from twisted.application import service
from twisted.internet import task
from twisted.logger import Logger
from twisted.python.failure import Failure

from mailstack.store import changes

# The longest a stop waits for the LISTEN thread (the timeout of each ``notifies`` wait; it
# does not delay a notice).  The stop blocks the reactor thread that long, so the test
# harness (tests/support/server.py), which stops a server after every test, shortens it.
STOP_WAIT = 0.5

log = Logger(namespace="mailstack.watch")


class Watcher:
    """One waiting session: ``known()`` is the modseq it has seen, ``wake()`` tells it."""

    def __init__(self, folder_id: int, known: Callable[[], int], wake: Callable[[], None]):
        self.folder_id, self.known, self.wake = folder_id, known, wake


class FolderWatch(service.Service):
    def __init__(self, db, reactor, poll_interval: float):
        self.db, self.reactor, self.poll_interval = db, reactor, poll_interval
        self.watchers: dict[int, set[Watcher]] = {}
        self._poll = task.LoopingCall(self._check)
        self._poll.clock = reactor
        self._polling = None
        self._listener = None
        self.listening = False       # True while the PostgreSQL LISTEN connection is up

    # --- subscriptions -------------------------------------------------------------------
    def watch(self, folder_id: int, known, wake) -> Callable[[], None]:
        watcher = Watcher(folder_id, known, wake)
        self.watchers.setdefault(folder_id, set()).add(watcher)
        return lambda: self._unwatch(watcher)

    def _unwatch(self, watcher: Watcher) -> None:
        group = self.watchers.get(watcher.folder_id)
        if group is not None:
            group.discard(watcher)
            if not group:
                del self.watchers[watcher.folder_id]

    def changed(self, folder_ids) -> None:
        for folder_id in folder_ids:
            for watcher in list(self.watchers.get(int(folder_id), ())):
                try:
                    watcher.wake()
                except Exception:
                    log.failure("waking a watcher failed")

    # --- polling -------------------------------------------------------------------------
    def _check(self, force: bool = False):
        if not self.watchers or self._polling is not None or (self.listening and not force):
            return None
        self._polling = self.db.read(changes.modseqs, list(self.watchers))
        self._polling.addCallback(self._compare)
        self._polling.addErrback(lambda f: log.warn("polling folders failed: {e}", e=f.value))
        self._polling.addBoth(self._polled)
        return None

    def _polled(self, _):
        self._polling = None

    def _compare(self, current: dict[int, int]) -> None:
        for folder_id, modseq in current.items():
            for watcher in list(self.watchers.get(folder_id, ())):
                if watcher.known() != modseq:
                    watcher.wake()

    # --- lifecycle -----------------------------------------------------------------------
    def startService(self):
        super().startService()
        self.db.commit_listeners.append(self.changed)
        self._poll.start(self.poll_interval, now=False)
        if self.db.engine.dialect.name == "postgresql":
            self._listener = PostgresListener(self)
            self._listener.start()

    def stopService(self):
        super().stopService()
        if self.changed in self.db.commit_listeners:
            self.db.commit_listeners.remove(self.changed)
        if self._poll.running:
            self._poll.stop()
        if self._listener is not None:
            self._listener.stop()
            self._listener = None


class Backoff:
    """Seconds to wait before each reconnect: 1, 2, 4 ... at most 60; ``reset`` once up."""

    def __init__(self, first: float = 1.0, most: float = 60.0):
        self.first, self.most = first, most
        self._next = first

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.most)
        return delay

    def reset(self) -> None:
        self._next = self.first


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


class PostgresListener:
    """``LISTEN mailstack_folders`` on a dedicated connection, in a thread of its own.

    When the connection drops (a terminated backend, a restart, a network cut) the watch
    polls meanwhile and this thread reconnects after a growing pause (``Backoff``).  The
    operator gets one warning line per outage -- no traceback, no line per failed retry
    (those are debug) -- and one info line when LISTEN is back.  Logging goes through the
    reactor thread, like every other report from here.
    """

    def __init__(self, watch: FolderWatch, backoff: Backoff | None = None):
        self.watch = watch
        self.backoff = backoff or Backoff()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailstack-listen", daemon=True)
        self._down_since = None   # monotonic seconds when the outage was reported
        self._retries = 0         # failed reconnects in this outage

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)

    def _in_reactor(self, fn, *args, **kwargs):
        self.watch.reactor.callFromThread(fn, *args, **kwargs)

    def _run(self):
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as e:
                if not self._stop.is_set():
                    self._lost(e)
            if self._stop.is_set():
                break
            self._in_reactor(self._went_down)
            self._stop.wait(self.backoff.next())

    def _went_down(self):
        self.watch.listening = False
        self.watch._check()        # what was notified meanwhile is not lost: poll now

    def _lost(self, error: Exception) -> None:
        if self._down_since is not None:
            self._retries += 1
            self._in_reactor(log.debug, "LISTEN reconnect {retry} failed: {error}",
                             retry=self._retries, error=_first_line(error))
            return
        self._down_since = time.monotonic()
        if not self._expected(error):  # not a lost connection but a fault of ours: say where
            self._in_reactor(log.failure, "LISTEN connection failed; polling folders instead",
                             Failure(error, type(error), error.__traceback__))
            return
        self._in_reactor(log.warn, "LISTEN connection to the database is down ({error}); "
                         "polling folders every {poll} s and reconnecting",
                         error=_first_line(error), poll=self.watch.poll_interval)

    def _expected(self, error: Exception) -> bool:
        dbapi = self.watch.db.engine.dialect.loaded_dbapi
        return isinstance(error, (DBAPIError, dbapi.Error, OSError))

    def _up(self) -> None:
        if self._down_since is not None:
            self._in_reactor(log.info, "LISTEN connection restored after {seconds:.1f} s; "
                             "polling stops", seconds=time.monotonic() - self._down_since)
        self._down_since, self._retries = None, 0
        self.backoff.reset()
        self._in_reactor(setattr, self.watch, "listening", True)
        # Anything committed before LISTEN took effect is caught by one poll.
        self._in_reactor(self.watch._check, force=True)

    def _listen(self):
        raw = self.watch.db.engine.raw_connection()
        conn = raw.driver_connection   # read first: a detached proxy no longer knows it
        # Ours alone, never returned to the pool.  A detached proxy has no finaliser, so it
        # is dropped, not closed: closing it would first ROLLBACK on the (maybe dead)
        # connection, and the pool would log that failure with a traceback.
        raw.detach()
        try:
            conn.autocommit = True
            conn.execute(f"LISTEN {changes.CHANNEL}")
            self._up()
            while not self._stop.is_set():
                # Each notice is passed on as it arrives; the timeout only bounds how long
                # a stop request waits.  (Collecting a whole timeout's worth would delay
                # every push by up to that timeout.)
                for notice in conn.notifies(timeout=STOP_WAIT):
                    if notice.payload.isdigit():
                        self._in_reactor(self.watch.changed, {int(notice.payload)})
        finally:
            conn.close()               # psycopg: never raises, even on a broken connection
