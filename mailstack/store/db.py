"""The database engine and the thread pool every unit of work runs in.

Why: SQLAlchemy is synchronous.  The reactor must never wait on it (ARCHITECTURE C7), so
``Database.run(fn, *args)`` runs ``fn(connection, *args)`` inside one transaction in a
dedicated thread pool and returns a Deferred that fires only after the COMMIT.  A success
reply sent from its callback is therefore durable.

SQLite: pysqlite's implicit transactions silently lose concurrent read-then-write updates
(TWISTED-NOTES), so we turn them off and issue ``BEGIN IMMEDIATE`` for writes ourselves.
WAL lets readers proceed beside the writer; ``synchronous=FULL`` makes a commit survive a
power cut, which is what "nothing acknowledged is lost" means.

Large bodies: ``body_budget`` (store/budget.py) bounds the octets of messages being stored
at once.  Each driver copies a body it is given (pysqlite binds a BLOB as a transient copy
and SQLite builds the record from it: about twice the body while the INSERT runs; libpq
copies it into its output buffer), and libpq keeps its send and receive buffers as large
as the largest message the connection ever carried (measured: 24 MB kept per pooled
connection after one 25 MB INSERT).  So a unit of work that moved a large body calls
``large_body``: on PostgreSQL the connection is closed after its transaction instead of
going back to the pool.

Volatile writes (``run_volatile``, issue 16): a write whose loss in a power cut harms
nothing -- the POP3 maildrop's lease and the ``mailstack who`` rows, which a restarting
node frees anyway -- is committed without waiting for the disk (SQLite ``synchronous=
NORMAL`` for that transaction, PostgreSQL ``synchronous_commit = off``).  It is still
atomic and seen by every later transaction, and the next durable commit flushes it
(SQLite's WAL and PostgreSQL's WAL are written in order), so it can be lost only together
with what was committed after it.  A POP3 login session (login record, who-row, lock,
release, who-row gone) took five flushes, one after the other on SQLite's single writer;
it now takes one, the login record's.
"""

from __future__ import annotations

import contextlib
import threading

from typing import Any, Callable, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, InterfaceError
from twisted.logger import Logger

from mailstack.metrics import NO_METRICS
from mailstack.store.budget import BUDGET, ByteBudget
from mailstack.store.changes import TOUCHED
from mailstack.store.errors import Conflict, StoreUnavailable
from mailstack.store.group_commit import GroupCommit
from mailstack.threads import WorkerPool

T = TypeVar("T")
log = Logger(namespace="mailstack.store")
_READONLY = "mailstack_readonly"
_DISCARD = "mailstack_discard"
_VOLATILE = "mailstack_volatile"
_SYNCHRONOUS = "mailstack_synchronous"    # the SQLite connection's current setting
LARGE_BODY = 1024 * 1024     # octets from which a body's driver buffers are not kept


def large_body(conn, size: int) -> None:
    """A body of ``size`` octets went through ``conn`` in this transaction: on PostgreSQL,
    close the connection afterwards (libpq keeps its buffers that large)."""
    if size >= LARGE_BODY and conn.dialect.name == "postgresql":
        conn.info[_DISCARD] = True


def make_engine(url: str, *, threads: int = 4, busy_timeout_ms: int = 5000) -> Engine:
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            raise ValueError("an in-memory SQLite database cannot be shared by a thread pool")
        # Reads and writes have a pool of ``threads`` each (Database): a connection each.
        engine = create_engine(url, pool_size=2 * threads + 2, max_overflow=4,
                               connect_args={"check_same_thread": False})
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    engine = create_engine(url, pool_size=threads + 2, max_overflow=4, pool_pre_ping=True)
    if engine.dialect.name == "postgresql":
        _configure_postgresql(engine, busy_timeout_ms)
    return engine


def _configure_postgresql(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # A lock held elsewhere becomes a temporary error instead of a hung session.
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(busy_timeout_ms)}")
        dbapi_connection.commit()


SQLITE_CACHE_KB = 512       # page cache per SQLite connection


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # Each pooled connection keeps its own page cache (SQLite's default: 2 MB), and
        # there are 2 * threads + 2 of them: after a few mailboxes were read, 28 MB of the
        # process were pages the operating system's cache holds anyway (issue 16).
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")
        cursor.close()
        record.info[_SYNCHRONOUS] = "FULL"

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        info = connection.info
        readonly = info.get(_READONLY, False)
        if not readonly:
            # Set before every write, from what this connection was last set to: a
            # volatile transaction that failed half-way cannot leave its setting behind.
            wanted = "NORMAL" if info.get(_VOLATILE) else "FULL"
            if info.get(_SYNCHRONOUS) != wanted:
                connection.exec_driver_sql(f"PRAGMA synchronous={wanted}")
                info[_SYNCHRONOUS] = wanted
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


class Database:
    """An engine plus the thread pool that runs its units of work."""

    def __init__(self, url: str, *, reactor, threads: int = 4, busy_timeout_ms: int = 5000,
                 body_budget: int = BUDGET, metrics=NO_METRICS):
        self.url = url
        self.metrics = metrics       # each transaction's duration, read or write
        self.engine = make_engine(url, threads=threads, busy_timeout_ms=busy_timeout_ms)
        self.reactor = reactor
        self.pool = WorkerPool("mailstack-db", threads, reactor)
        # SQLite has one writer at a time: writes get threads of their own, so that reads
        # (FETCH, SEARCH, catching up with other sessions) never wait for a thread held by
        # a write queued on the writer lock.  Several write threads, not one: a write does
        # Python work before it takes the lock (measured: one write thread cost port 25
        # 14-20%).  PostgreSQL writes in parallel: one pool for both.
        sqlite = self.engine.dialect.name == "sqlite"
        self.write_pool = (WorkerPool("mailstack-db-write", threads, reactor)
                           if sqlite else self.pool)
        # Called in the reactor thread with the folder ids a committed transaction wrote.
        self.commit_listeners: list[Callable[[set], None]] = []
        # Writers of this process (the write thread, and callers of run_sync such as the
        # CLI) take turns here instead of in SQLite's busy handler, which sleeps 1, 2, 5 ...
        # 100 ms between tries: ten IMAP sessions writing to one folder spent most of their
        # STORE time asleep there.  Other processes still meet busy_timeout.
        self._writer = threading.Lock() if sqlite else contextlib.nullcontext()
        # Octets of message bodies being stored at once, for every listener (budget.py).
        self.body_budget = ByteBudget(body_budget)
        # Small writes of many sessions in one transaction (group_commit.py, issue 16).
        self.group = GroupCommit(self, reactor, parallel=1 if sqlite else threads)

    def start(self) -> None:
        self.pool.start()
        self.write_pool.start()       # the same pool on PostgreSQL: started once

    def stop(self) -> None:
        self.pool.stop()
        self.write_pool.stop()
        self.engine.dispose()

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any):
        """Run ``fn(conn, *args)`` in one write transaction, off the reactor thread."""
        return self.write_pool.run(self.run_sync, fn, *args, **kwargs)

    def run_prepared(self, prepare: Callable[[], Any], fn: Callable[..., T], *args: Any,
                     **kwargs: Any):
        """Like ``run``, but ``prepare()`` runs first in the same write thread, before the
        writer lock is taken, and ``fn`` gets its result: ``fn(conn, prepared, *args)``.

        Why: work that needs no database -- the analysis of a delivered message -- then
        does not hold SQLite's single writer while other writers wait (issue 16)."""
        return self.write_pool.run(self._prepared_sync, prepare, fn, *args, **kwargs)

    def _prepared_sync(self, prepare, fn, *args, **kwargs):
        return self.run_sync(fn, prepare(), *args, **kwargs)

    def run_volatile(self, fn: Callable[..., T], *args: Any, **kwargs: Any):
        """Like ``run``, but the commit does not wait for the disk: only for writes whose
        loss in a power cut harms nothing (the module docstring says which)."""
        return self.write_pool.run(self.run_volatile_sync, fn, *args, **kwargs)

    def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any):
        """Like ``run`` but a read-only transaction (SQLite readers do not queue behind writers)."""
        return self.pool.run(self.read_sync, fn, *args, **kwargs)

    def _committed(self, folder_ids) -> None:
        for listener in list(self.commit_listeners):
            try:
                listener(folder_ids)
            except Exception:
                log.failure("commit listener failed")

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._writer:
            return self._transaction(False, fn, args, kwargs)

    def run_volatile_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._writer:
            return self._transaction(False, fn, args, kwargs, volatile=True)

    def read_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._transaction(True, fn, args, kwargs)

    def _transaction(self, readonly, fn, args, kwargs, volatile=False):
        with self.metrics.db_timer("read" if readonly else "write"):
            return self._measured_transaction(readonly, fn, args, kwargs, volatile)

    def _measured_transaction(self, readonly, fn, args, kwargs, volatile=False):
        try:
            with self.engine.connect() as conn:
                info = conn.info
                info[_READONLY] = readonly
                if volatile:
                    info[_VOLATILE] = True
                touched = None
                try:
                    with conn.begin():
                        if volatile and conn.dialect.name == "postgresql":
                            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                        result = fn(conn, *args, **kwargs)
                    touched = conn.info.get(TOUCHED)
                    return result
                finally:
                    info.pop(_READONLY, None)
                    if volatile:
                        info.pop(_VOLATILE, None)
                    conn.info.pop(TOUCHED, None)
                    if conn.info.pop(_DISCARD, False):
                        conn.invalidate()
                    if touched and self.commit_listeners:
                        self.reactor.callFromThread(self._committed, touched)
        except IntegrityError as e:
            raise Conflict(str(e.orig)) from e
        except (OperationalError, InterfaceError) as e:
            log.warn("database unavailable: {error}", error=str(e.orig).strip())
            raise StoreUnavailable("database unavailable") from e
        except DBAPIError as e:
            if e.connection_invalidated:
                raise StoreUnavailable("database connection lost") from e
            raise
