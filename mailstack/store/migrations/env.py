"""Alembic environment: runs against the engine mailstack hands it, never a URL in an ini."""

from alembic import context

from mailstack.store.schema import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    context.run_migrations()
