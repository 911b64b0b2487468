from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from federation.database import make_engine, migrate
from node.core.db import GENESIS_HASH, Base, import_table_modules
from protocol.encoding import sha256_b64u


def _diff(conn: Any) -> list[Any]:
    # Tables on other MetaData objects (federation.store) are not this comparison's business.
    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        return type_ != "table" or name in Base.metadata.tables

    ctx = MigrationContext.configure(
        conn, opts={"compare_type": False, "include_name": include_name}
    )
    return list(compare_metadata(ctx, Base.metadata))


async def test_migrations_match_the_models(db_url: str) -> None:
    import_table_modules()
    engine = make_engine(db_url)
    try:
        await migrate(engine, "node:migrations")
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
            head = (await conn.execute(text("SELECT seq, hash FROM audit_head"))).one()
        assert diff == []
        assert tuple(head) == (0, GENESIS_HASH)
        await migrate(engine, "node:migrations")  # idempotent
    finally:
        await engine.dispose()


def test_genesis_hash_is_documented_value() -> None:
    assert GENESIS_HASH == sha256_b64u(b"peernet/v1/audit-genesis")
