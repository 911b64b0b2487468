"""Helpers for the hub ingest tests: a second fresh store on the same engine, a dump of every
table ingest writes, and a hub share row (for the `already_shared` rule)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.stats.aggregates import AggregateAlarm, AggregateRelease, AggregateTotal
from hub.stats.aggregates_workload import AggregateValue
from hub.stats.rounds import HubShare
from hub.stats.variance_totals import AggregateVarianceTotal
from hub.stats.workload_totals import AggregateValueTotal
from peernet.throwaway_pg import create_database, drop_database
from tests.privacy.hub_fixtures import make_hub_store

__all__ = ["add_share", "dump", "second_store"]

_FLOAT_SUMS = {"aggregate_totals", "aggregate_value_totals"}  # float running sums


@contextlib.asynccontextmanager
async def second_store(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[AsyncEngine]:
    """Another fresh, migrated hub store on the engine `db_url` is on."""
    if db_url.startswith("sqlite"):
        engine = await make_hub_store(f"sqlite:///{tmp_path / 'second.db'}")
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    admin = request.getfixturevalue("pg_admin_url")
    name = "t_" + uuid.uuid4().hex[:16]
    url = await create_database(admin, name)
    engine = await make_hub_store(url)
    try:
        yield engine
    finally:
        await engine.dispose()
        await drop_database(admin, name)


async def dump(engine: AsyncEngine, *, float_sums: bool = True) -> dict[str, list[Any]]:
    """Every row of every table ingest writes (alarms without their serial id), sorted.
    `float_sums=False` leaves out the float `var_sum` of the value running sums, whose last
    bits depend on how releases were grouped (the exact sums are in
    `aggregate_variance_totals`)."""
    out: dict[str, list[Any]] = {}
    async with engine.connect() as conn:
        for model in (AggregateRelease, AggregateTotal, AggregateValue, AggregateValueTotal,
                      AggregateVarianceTotal, AggregateAlarm):
            table: Any = model.__table__
            cols = [c for c in table.columns if c.name != "id"
                    and (float_sums or not (table.name in _FLOAT_SUMS and c.name == "var_sum"))]
            rows = await conn.execute(select(*cols))
            out[table.name] = sorted(tuple(r) for r in rows)
    return out


async def add_share(engine: AsyncEngine, node_id: str, month: str, region: str) -> None:
    """A shared-round share the hub holds for this node-month."""
    async with engine.begin() as conn:
        await conn.execute(insert(HubShare).values(
            node_id=node_id, month=month, region=region, body_sha256="s" * 43, share=b"x",
            excluded=False, received_at=0))
