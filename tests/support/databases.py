"""Fresh, migrated databases for each test: an SQLite file, and PostgreSQL when configured.

Why templates: the schema comes from a dozen Alembic revisions, and migrating a database for
every test cost more than many of the tests themselves.  Each test session (each xdist
worker) migrates one template per backend, the first time a test asks for it, and every test
then gets a copy: SQLite copies the template file; PostgreSQL runs
``CREATE DATABASE <copy> TEMPLATE <template>`` and drops the copy after the test.  The
template is built anew each session, so a changed migration is always what the tests see.
Tests that need an older revision (``fresh_database(..., revision="0003")``) still migrate
an empty database themselves.

Why a thread makes the PostgreSQL copies: creating and dropping a database each cost the
server 0.1-0.5 s of file copying and fsync on this machine, more than the schema-and-migrate
it replaces.  A background thread keeps two copies ready and drops used ones, so a test
neither waits for its copy nor for the drop; what it gets is still a database nothing else
has ever touched.

``MAILSTACK_TEST_DATABASE_URL`` (set by ``.ci/run``) names a PostgreSQL server; the database
it names is used only to create and drop the per-test databases, so tests never see each
other's rows (nor each other's LISTEN/NOTIFY channels) and can run side by side.  Without
it, every PostgreSQL variant is still collected and reported as skipped.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mailstack.store import migrations
from mailstack.store.db import make_engine

POSTGRES_URL = os.environ.get("MAILSTACK_TEST_DATABASE_URL", "").strip()
SKIP_POSTGRES = ("PostgreSQL not configured: set MAILSTACK_TEST_DATABASE_URL "
                 "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to run it")
PREFIX = "mailstack_t_"   # every database the tests create on the server starts with this


def backends() -> list[str]:
    """The parameters of a database test: SQLite and PostgreSQL, always both.

    Why not a ``skipif`` mark: ``fresh_database`` skips from one line, so the summary shows one
    line with the count of PostgreSQL variants skipped instead of one line per test.
    """
    return ["sqlite", "postgresql"]


@contextmanager
def fresh_database(backend: str, tmp_path, revision: str = "head"):
    """Yield the URL of a database of its own upgraded to `revision` (the current schema)."""
    if backend == "sqlite":
        path = Path(tmp_path) / "mailstack.db"
        if revision == "head":
            shutil.copyfile(_templates.sqlite(), path)
        else:
            _migrate(f"sqlite:///{path}", revision)
        yield f"sqlite:///{path}"
        return
    require_postgresql()
    if revision == "head":
        name = _templates.postgresql_copies().take()
    else:
        name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        _create_database(name, None)
    url = _database_url(name)
    try:
        if revision != "head":
            _migrate(url, revision)
        yield url
    finally:
        if revision == "head":
            _templates.postgresql_copies().used(name)
        else:
            _drop_database(name)


def require_postgresql() -> None:
    if not POSTGRES_URL:
        pytest.skip(SKIP_POSTGRES)


class _Templates:
    """The migrated templates of this process, built on first use, removed at session end."""

    def __init__(self):
        self._sqlite: Path | None = None
        self._postgresql: _Copies | None = None

    def sqlite(self) -> Path:
        if self._sqlite is None:
            path = Path(tempfile.mkdtemp(prefix="mailstack-template-")) / "template.db"
            _migrate(f"sqlite:///{path}", "head")
            # The engine is disposed: SQLite has checkpointed and removed the WAL file, so
            # the one file holds the whole schema.
            assert not path.with_name(path.name + "-wal").exists()
            self._sqlite = path
        return self._sqlite

    def postgresql_copies(self) -> "_Copies":
        if self._postgresql is None:
            name = f"{PREFIX}{os.getpid()}_template_{secrets.token_hex(3)}"
            _create_database(name, None)
            try:
                _migrate(_database_url(name), "head")
            except BaseException:
                _drop_database(name)
                raise
            self._postgresql = _Copies(name)
        return self._postgresql

    def close(self) -> None:
        if self._sqlite is not None:
            shutil.rmtree(self._sqlite.parent, ignore_errors=True)
            self._sqlite = None
        if self._postgresql is not None:
            self._postgresql.close()
            self._postgresql = None


class _Copies:
    """Copies of the PostgreSQL template made ahead of need, and used ones dropped, by a thread.

    ``take`` returns a copy no one has connected to; ``used`` hands it back to be dropped.
    Making copies comes before dropping used ones (a test may be waiting for a copy; nothing
    waits for a drop); if no copy is ready, ``take`` makes one itself rather than wait.  At
    the end, what is left is dropped several at a time.
    """

    READY = 2

    def __init__(self, template: str):
        self.template = template
        self._ready: queue.Queue[str] = queue.Queue()
        self._to_drop: list[str] = []
        self._stopping = False
        self._changed = threading.Condition()
        self._create = threading.Lock()       # one CREATE ... TEMPLATE at a time
        self._thread = threading.Thread(target=self._run, name="pg-copies", daemon=True)
        self._thread.start()

    def take(self) -> str:
        try:
            name = self._ready.get_nowait()
        except queue.Empty:
            name = self._make()
        with self._changed:
            self._changed.notify()
        return name

    def used(self, name: str) -> None:
        with self._changed:
            self._to_drop.append(name)
            self._changed.notify()

    def _make(self) -> str:
        name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        with self._create:
            _create_database(name, self.template)
        return name

    def _next_job(self):
        """``None`` to stop, ``""`` to make a copy, or the name of a copy to drop."""
        with self._changed:
            while True:
                if self._stopping:
                    return None
                if self._ready.qsize() < self.READY:
                    return ""
                if self._to_drop:
                    return self._to_drop.pop(0)
                self._changed.wait()

    def _run(self) -> None:
        while (job := self._next_job()) is not None:
            try:
                if job:
                    _drop_database(job)
                else:
                    self._ready.put(self._make())
            except Exception as e:            # a test that needs a copy makes its own
                print(f"tests/support/databases.py: {job or 'a copy'}: {e}", file=sys.stderr)
                time.sleep(1)

    def close(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self._thread.join()
        left = list(self._to_drop)
        while not self._ready.empty():
            left.append(self._ready.get())
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(_drop_database, left))
        _drop_database(self.template)
        _dispose_admin()


_templates = _Templates()
close_templates = _templates.close


def _database_url(name: str) -> str:
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


_admin_engine = None
_admin_lock = threading.Lock()


def _admin(statement: str) -> None:
    """Run `statement` on the database MAILSTACK_TEST_DATABASE_URL names (outside a transaction)."""
    global _admin_engine
    with _admin_lock:
        if _admin_engine is None:
            _admin_engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        engine = _admin_engine
    with engine.connect() as conn:
        conn.execute(text(statement))


def _dispose_admin() -> None:
    global _admin_engine
    with _admin_lock:
        if _admin_engine is not None:
            _admin_engine.dispose()
            _admin_engine = None


def _create_database(name: str, template: str | None) -> None:
    _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def _drop_database(name: str) -> None:
    # FORCE: a server a test left running may still hold a pooled connection.
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        migrations.upgrade(engine, revision)
    finally:
        engine.dispose()
