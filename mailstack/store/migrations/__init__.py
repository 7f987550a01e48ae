"""Versioned schema migrations (Alembic), run by ``mailstack db upgrade``.

Why Alembic: an upgrade must never lose data, and hand-rolled "CREATE IF NOT EXISTS"
cannot change a column.  The scripts live in the package so an installed mailstack can
upgrade its own database without a checkout.

``HEAD`` names the newest revision so that every start-up and admin command can check the
schema with one query and without importing Alembic (a quarter of a second per command);
a test keeps it equal to Alembic's own idea of the head.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

HERE = Path(__file__).parent
HEAD = "0026"


def _alembic_config(engine: Engine):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Back to `revision`: for an operator undoing an upgrade, and for the migration tests."""
    from alembic import command

    command.downgrade(_alembic_config(engine), revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(HERE)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == HEAD
