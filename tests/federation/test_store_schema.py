"""The federation tables each server's migrations create match `federation.store`, on both
engines, and the newest step (`fed_outbox.carrier`) upgrades a database made before it."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select

from federation.database import make_engine, migrate
from federation.store import METADATA, OutboxState, outbox


def _diff(conn: Any) -> list[Any]:
    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        return type_ != "table" or name in METADATA.tables

    ctx = MigrationContext.configure(
        conn, opts={"compare_type": False, "include_name": include_name}
    )
    return list(compare_metadata(ctx, METADATA))


@pytest.mark.parametrize("server", ["node", "hub"])
async def test_federation_tables_match_the_store(db_url: str, server: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine, f"{server}:migrations")
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


@pytest.mark.parametrize("server", ["node", "hub"])
async def test_the_carrier_step_keeps_queued_rows(db_url: str, server: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine, f"{server}:migrations", "federation_0001")
        async with engine.begin() as conn:
            cols = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("fed_outbox")})
            assert "carrier" not in cols
            row = {c.name: None for c in outbox.columns if c.name not in ("id", "carrier")}
            row.update(destination="peer", msg_id="01J00000000000000000000000",
                       msg_type="ack", intent="{}", state=OutboxState.PENDING, attempts=0,
                       next_attempt_ts=1, created_ts=1, expires_ts=2)
            await conn.execute(insert(outbox).values(row))  # no `carrier` named: not there yet
        await migrate(engine, f"{server}:migrations")
        async with engine.connect() as conn:
            got = (await conn.execute(select(outbox.c.msg_id, outbox.c.carrier))).all()
        assert [tuple(r) for r in got] == [("01J00000000000000000000000", None)]
    finally:
        await engine.dispose()
