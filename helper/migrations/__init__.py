"""Alembic migrations of the helper aggregator (run through `federation.database.migrate`)."""
