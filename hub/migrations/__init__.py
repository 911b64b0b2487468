"""Alembic migrations of the hub (run through `federation.database.migrate`)."""
