"""Fresh, migrated databases for each test: an SQLite file, and PostgreSQL when configured.

``MAILSTACK_TEST_DATABASE_URL`` (set by ``.ci/run``) names a PostgreSQL server; each test
gets a schema of its own there (``search_path``), dropped afterwards, so tests never see
each other's rows and can run against the same database.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from mailstack.store import migrations
from mailstack.store.db import make_engine

POSTGRES_URL = os.environ.get("MAILSTACK_TEST_DATABASE_URL", "").strip()


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


@contextmanager
def fresh_database(backend: str, tmp_path, revision: str = "head"):
    """Yield the URL of an empty database upgraded to `revision` (the current schema)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'mailstack.db'}"
        _migrate(url, revision)
        yield url
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    try:
        _migrate(url, revision)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _migrate(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        migrations.upgrade(engine, revision)
    finally:
        engine.dispose()
