"""The national tables as migrated (`national_0001`) match their models
(`hub.national.store`), on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from federation.database import make_engine, migrate
from hub.db import Base, import_table_modules

TABLES = ("hub_national_document", "hub_national_month")


async def test_national_tables_match_their_models(db_url: str) -> None:
    import_table_modules()
    only = MetaData()
    for name in TABLES:
        Base.metadata.tables[name].to_metadata(only)
    engine = make_engine(db_url)
    try:
        await migrate(engine, "hub:migrations")
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(
                c, opts={"compare_type": False,
                         "include_name": lambda n, t, _p: t != "table" or n in TABLES}),
                only))
        assert diff == []
    finally:
        await engine.dispose()
