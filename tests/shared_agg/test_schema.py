"""The shared-aggregation tables the migrations create match their models, on both engines:
the helper's own tables and the federation tables on the helper, and the hub's rounds."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from federation.database import make_engine, migrate
from federation.store import METADATA as FED


def _diff(conn: Any, metadata: MetaData, tables: set[str]) -> list[Any]:
    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        return type_ != "table" or name in tables

    only = MetaData()
    for name in tables:
        metadata.tables[name].to_metadata(only)
    ctx = MigrationContext.configure(
        conn, opts={"compare_type": False, "include_name": include_name})
    return list(compare_metadata(ctx, only))


async def _check(db_url: str, location: str, metadata: MetaData, tables: set[str]) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine, location)
        async with engine.connect() as conn:
            assert await conn.run_sync(lambda c: _diff(c, metadata, tables)) == []
    finally:
        await engine.dispose()


async def test_helper_tables_match_their_models(db_url: str) -> None:
    from helper.db import Base, import_table_modules

    import_table_modules()
    await _check(db_url, "helper:migrations", Base.metadata, set(Base.metadata.tables))
    await _check(db_url, "helper:migrations", FED, set(FED.tables))


async def test_hub_round_tables_match_their_models(db_url: str) -> None:
    from hub.db import Base
    from hub.stats import rounds

    tables = {rounds.HubShare.__tablename__, rounds.RoundRow.__tablename__,
              rounds.SharedFigure.__tablename__}
    await _check(db_url, "hub:migrations", Base.metadata, tables)
