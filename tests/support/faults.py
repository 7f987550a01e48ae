"""Real faults for the "store unavailable" tests: another session holds the write locks.

Why not a mock: the point is that our thread pool, lock timeouts and error mapping turn a
real database refusal into a temporary reply.  On SQLite an ``EXCLUSIVE`` transaction
blocks every other writer (WAL readers still read); on PostgreSQL an ``EXCLUSIVE`` table
lock does the same for the tables mail is written to.  The server's ``busy_timeout_ms``
(2 s in tests) turns the wait into an error.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import create_engine, text


@contextmanager
def writes_blocked(db_url: str, tables=("folders", "messages")):
    engine = create_engine(db_url, isolation_level="AUTOCOMMIT")
    conn = engine.connect()
    try:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
        else:
            conn.exec_driver_sql("BEGIN")
            conn.execute(text(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE"))
        yield
    finally:
        conn.exec_driver_sql("ROLLBACK")
        conn.close()
        engine.dispose()
