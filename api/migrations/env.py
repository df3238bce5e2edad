"""Alembic's environment: runs on the connection `api.database.migrate` hands it (no URL of its own)."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
