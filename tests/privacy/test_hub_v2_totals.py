"""The hub keeps running per-(month, region, key) sums of v2 releases on ingest, in the
release's transaction, and the statistics read them (SQLite and PostgreSQL): after several
ingests, a refused release and a duplicate, the sums equal the per-node sums; the migration
fills them from v2 values stored before it."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.database import make_engine, migrate
from hub.stats.aggregates import AggregateError, AggregateRelease, receive_release
from hub.stats.aggregates_read import node_values
from hub.stats.aggregates_workload import AggregateValue
from hub.stats.query import StatsFilter, load_month_sums, load_v2_sums
from hub.stats.workload_totals import AggregateValueTotal
from tests.privacy.hub_fixtures import make_hub_store
from tests.privacy.test_hub_workload import ALLOWANCE, KEYS, NOW, _drop_key, _resigned, v2


async def _receive(engine: AsyncEngine, body: dict[str, Any], region: str) -> Any:
    return await receive_release(engine, body, sender=body["release"]["node_id"], keys=KEYS,
                                 region=region, now_ms=NOW, allowance=ALLOWANCE)


async def _totals(engine: AsyncEngine) -> dict[tuple[str, str, str], tuple[int, float, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(AggregateValueTotal.__table__))
        return {(r.month, r.region, r.key): (int(r.value_sum), float(r.var_sum), int(r.nodes))
                for r in rows}


async def _per_node(engine: AsyncEngine) -> dict[tuple[str, str, str], tuple[int, float, int]]:
    acc: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [0, 0.0, 0])
    async with engine.connect() as conn:  # per node-month, from the stored bodies
        months = {m for (m,) in await conn.execute(select(AggregateRelease.month))}
        for month in months:
            for nm in (await node_values(conn, month)).values():
                for key, (value, variance) in nm.values.items():
                    a = acc[(month, nm.region, key)]
                    a[0] += value
                    a[1] += variance
                    a[2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in acc.items()}


def _same(a: dict[Any, tuple[int, float, int]], b: dict[Any, tuple[int, float, int]]) -> None:
    assert set(a) == set(b)
    for k in a:
        assert a[k][0] == b[k][0] and a[k][2] == b[k][2]
        assert a[k][1] == pytest.approx(b[k][1], rel=1e-12)


async def test_running_sums_equal_per_node_sums(db_url: str) -> None:
    engine = await make_hub_store(db_url)
    try:
        plan = [("station-1", "2026-07", "north"), ("station-2", "2026-07", "north"),
                ("station-3", "2026-07", "south"), ("station-1", "2026-08", "north"),
                ("station-2", "2026-08", "south")]
        bodies = [v2(n, m, seed=i) for i, (n, m, _) in enumerate(plan)]
        for body, (_, _, region) in zip(bodies, plan, strict=True):
            await _receive(engine, body, region=region)
        before = await _totals(engine)
        _same(before, await _per_node(engine))
        assert before[("2026-07", "north", "total")][2] == 2
        # a duplicate: nothing counted twice
        assert (await _receive(engine, bodies[0], region="north")).duplicate
        assert await _totals(engine) == before
        # a refused release: nothing changes
        bad = _resigned(v2("station-3", "2026-08", seed=9), _drop_key)
        with pytest.raises(AggregateError) as err:
            await _receive(engine, bad, region="south")
        assert err.value.code == "bad_cells"
        assert await _totals(engine) == before
        # a conflicting second release of a stored node-month: refused, nothing changes
        with pytest.raises(AggregateError) as err:
            await _receive(engine, v2("station-1", "2026-07", seed=42), region="north")
        assert err.value.code == "conflicting_release"
        assert await _totals(engine) == before
        # the query reads the running sums; the node-filter path sums per-node rows: equal
        f_all = StatsFilter("2026-07", "2026-08")
        f_nodes = StatsFilter("2026-07", "2026-08", nodes=("station-1", "station-2",
                                                           "station-3"))
        async with engine.connect() as conn:
            fast = await load_v2_sums(conn, f_all)
            slow = await load_v2_sums(conn, f_nodes)
            south = await load_v2_sums(conn, StatsFilter("2026-07", "2026-08", region="south"))
            sums = await load_month_sums(conn, f_all)
        assert set(fast) == set(slow) == {"2026-07", "2026-08"}
        for m in fast:
            assert set(fast[m]) == set(slow[m])
            for r in fast[m]:
                np.testing.assert_array_equal(fast[m][r][0], slow[m][r][0])
                np.testing.assert_allclose(fast[m][r][1], slow[m][r][1], rtol=1e-12)
        assert {r for m in south for r in south[m]} == {"south"}
        assert sums["2026-07"].nodes == 3 and sums["2026-08"].nodes == 2
    finally:
        await engine.dispose()


async def test_migration_fills_sums_from_stored_values(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine, "hub:migrations", "aggregate_values@head")
        rows = [{"node_id": n, "month": "2026-05", "key": k, "region": reg,
                 "group_name": k.partition(":")[0], "value": v, "variance": var}
                for n, reg, v, var in (("a", "north", 3, 2.5), ("b", "north", -1, 4.0),
                                       ("c", "south", 7, 1.0))
                for k in ("total", "referral:eap")]
        async with engine.begin() as conn:
            await conn.execute(insert(AggregateValue), rows)
        await migrate(engine, "hub:migrations")
        got = await _totals(engine)
        assert got == {("2026-05", "north", "total"): (2, 6.5, 2),
                       ("2026-05", "north", "referral:eap"): (2, 6.5, 2),
                       ("2026-05", "south", "total"): (7, 1.0, 1),
                       ("2026-05", "south", "referral:eap"): (7, 1.0, 1)}
    finally:
        await engine.dispose()


async def test_totals_table_matches_its_model(db_url: str) -> None:
    from hub.db import Base
    from tests.shared_agg.test_schema import _check

    await _check(db_url, "hub:migrations", Base.metadata,
                 {AggregateValueTotal.__tablename__})
