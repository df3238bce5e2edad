"""Alembic migrations of the API's database (run by `api.database.migrate`)."""
