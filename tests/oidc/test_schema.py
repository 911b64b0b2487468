"""The identity-link tables the OIDC migrations create match their models, node and hub,
on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from federation.database import make_engine, migrate


async def _check(db_url: str, location: str, metadata: MetaData, table: str,
                 referred: str) -> None:
    only = MetaData()
    for name in (referred, table):
        metadata.tables[name].to_metadata(only)

    def diff(conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={
            "compare_type": False,
            "include_name": lambda name, type_, _p: type_ != "table" or name == table,
            "include_object": lambda obj, name, type_, _r, _c: type_ != "table"
            or name == table})
        return list(compare_metadata(ctx, only))

    engine = make_engine(db_url)
    try:
        await migrate(engine, location)
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_node_identity_links_match_the_model(db_url: str) -> None:
    from node.core.db import Base, import_table_modules

    import_table_modules()
    await _check(db_url, "node:migrations", Base.metadata, "oidc_identities", "users")


async def test_hub_identity_links_match_the_model(db_url: str) -> None:
    from hub.db import Base, import_table_modules

    import_table_modules()
    await _check(db_url, "hub:migrations", Base.metadata, "hub_oidc_identities", "hub_users")
