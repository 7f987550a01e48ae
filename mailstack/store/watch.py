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
from typing import Callable

from twisted.application import service
from twisted.internet import task
from twisted.logger import Logger

from mailstack.store import changes

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


class PostgresListener:
    """``LISTEN mailstack_folders`` on a dedicated connection, in a thread of its own."""

    RECONNECT_SECONDS = 5.0

    def __init__(self, watch: FolderWatch):
        self.watch = watch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailstack-listen", daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)

    def _set_listening(self, value: bool):
        self.watch.reactor.callFromThread(setattr, self.watch, "listening", value)

    def _run(self):
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as e:   # a lost connection: poll meanwhile, then reconnect
                log.warn("LISTEN connection lost: {error}", error=str(e).strip())
            self._set_listening(False)
            self._stop.wait(self.RECONNECT_SECONDS)

    def _listen(self):
        raw = self.watch.db.engine.raw_connection()
        conn = raw.driver_connection   # read first: a detached proxy no longer knows it
        raw.detach()          # ours alone, never returned to the pool
        try:
            conn.autocommit = True
            conn.execute(f"LISTEN {changes.CHANNEL}")
            self._set_listening(True)
            # Anything committed before LISTEN took effect is caught by one poll.
            self.watch.reactor.callFromThread(self.watch._check, force=True)
            while not self._stop.is_set():
                # Each notice is passed on as it arrives; the timeout only bounds how long
                # a stop request waits.  (Collecting a whole timeout's worth would delay
                # every push by up to that timeout.)
                for notice in conn.notifies(timeout=0.5):
                    if notice.payload.isdigit():
                        self.watch.reactor.callFromThread(self.watch.changed,
                                                          {int(notice.payload)})
        finally:
            raw.close()
