"""`hub_query_p95_ms_v2`: the statistics query over workload (v2) releases at the bench's scale.

Used by `bench.privacy` (`figures(nodes, months, queries, tmp)`). The store holds
`nodes` x `months` v2 releases: a few received through the real receive path (verify, check,
store the values and the running sums in one transaction), the rest bulk-loaded in SQL the
way receipt would have written them: one `aggregate_releases` row per node-month, one
`aggregate_values` row per node-month and workload key (71: about 2.6M rows at 3,000 nodes x
12 months), and the running per-(month, region, key) sums built from those rows as the
migration does. The query is the same mix as `hub_query_p95_ms` (unfiltered, region,
discipline, region and discipline), through `load_month_sums` and `summarise`. SQLite in the
run's temporary directory, or the PostgreSQL database `PEERNET_PG_URL_V2` names.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["figures"]


async def _bulk(engine: Any, nodes: list[tuple[int, str, str]], months: list[str]) -> None:
    from sqlalchemy import Column, Double, Integer, MetaData, String, Table, insert, text

    from hub.stats.estimates import release_variance
    from protocol.vocabulary import Measure
    from protocol.workload import KEY_GROUP, WORKLOAD_KEYS, group_scales

    sc = group_scales(Measure.ZCDP, Decimal(1) / 12, None, 4, 1)
    md = MetaData()
    bn = Table("bench_nodes", md, Column("n", Integer), Column("node_id", String(63)),
               Column("region", String(64)))
    bk = Table("bench_keys", md, Column("k", Integer), Column("key", String(128)),
               Column("group_name", String(64)), Column("variance", Double))
    bm = Table("bench_months", md, Column("m", Integer), Column("month", String(7)))
    async with engine.begin() as conn:
        await conn.run_sync(md.create_all)
        await conn.execute(insert(bn), [{"n": i, "node_id": nd, "region": r}
                                        for i, nd, r in nodes])
        await conn.execute(insert(bk), [
            {"k": j, "key": k, "group_name": KEY_GROUP[k],
             "variance": release_variance("gaussian", sc[KEY_GROUP[k]])}
            for j, k in enumerate(WORKLOAD_KEYS)])
        await conn.execute(insert(bm), [{"m": j, "month": m} for j, m in enumerate(months)])
        await conn.execute(text(
            "INSERT INTO aggregate_releases (release_id, node_id, month, region, schema_name,"
            " measure, mechanism, scale, variance, budget_spent, per_person_month, per_cell,"
            " opendp_version, received_at, body_sha256, body) "
            "SELECT 'B' || n || '-' || month, node_id, month, region, 'peernet.workload/v2',"
            " 'zcdp', 'gaussian', 'groups', 320.0, '0.08333', 4, 1, '0.16.0', 0,"
            " 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', :body "
            "FROM bench_nodes CROSS JOIN bench_months"), {"body": b"{}"})
        await conn.execute(text(
            "INSERT INTO aggregate_values (node_id, month, key, region, group_name, value,"
            " variance) "
            "SELECT node_id, month, key, region, group_name, (n * 31 + k * 17 + m * 7) % 23 - 4,"
            " variance FROM bench_nodes CROSS JOIN bench_keys CROSS JOIN bench_months"))
        await conn.execute(text(
            "INSERT INTO aggregate_value_totals (month, region, key, value_sum, var_sum, nodes) "
            "SELECT month, region, key, SUM(value), SUM(variance), COUNT(*) "
            "FROM aggregate_values GROUP BY month, region, key"))
        for t in ("bench_nodes", "bench_keys", "bench_months"):
            await conn.execute(text(f"DROP TABLE {t}"))


async def figures(nodes: int, months: int, queries: int, tmp: Path) -> dict[str, float]:
    import numpy as np

    from hub.stats.aggregates import receive_release
    from hub.stats.query import StatsFilter, load_month_sums
    from hub.stats.summary import summarise
    from protocol.workload import SCHEMA
    from tests.privacy.hub_fixtures import Keys, make_hub_store, release_body

    url = os.environ.get("PEERNET_PG_URL_V2") or f"sqlite:///{tmp / 'hub_v2.db'}"
    engine = await make_hub_store(url)
    try:
        regions = [f"region-{i}" for i in range(8)]
        month_names = [f"2026-{m:02d}" for m in range(1, months + 1)]
        sample = [f"node-{i:04d}" for i in range(5)]
        t0 = time.perf_counter()
        await _bulk(engine, [(i, f"node-{i:04d}", regions[i % len(regions)])
                             for i in range(len(sample), nodes)], month_names)
        load_s = time.perf_counter() - t0
        keys = Keys(sample)
        bodies = [release_body(nd, m, seed=i, now_ms=1_800_000_000_000, schema=SCHEMA)
                  for i, nd in enumerate(sample) for m in month_names]
        t0 = time.perf_counter()
        for b in bodies:
            await receive_release(engine, b, sender=b["release"]["node_id"], keys=keys,
                                  region=regions[0], now_ms=1_800_000_000_000)
        ingest = len(bodies) / (time.perf_counter() - t0)
        filters = [
            StatsFilter(month_names[0], month_names[-1]),
            StatsFilter(month_names[0], month_names[-1], region="region-3"),
            StatsFilter(month_names[0], month_names[-1], disciplines=("fire", "ems")),
            StatsFilter(month_names[2], month_names[-1], region="region-1",
                        disciplines=("corrections",)),
        ]

        async def timed(f: StatsFilter) -> float:
            t = time.perf_counter()
            async with engine.connect() as conn:
                sums = await load_month_sums(conn, f)
            doc = summarise(sums, f.disciplines)
            if doc["months"][-1]["nodes_reporting"] != nodes:
                if f.region is None:
                    raise RuntimeError("v2 bench store does not hold every node-month")
            return (time.perf_counter() - t) * 1000

        for f in filters:
            await timed(f)  # warm
        lat = [await timed(filters[q % len(filters)]) for q in range(queries)]
        return {
            "hub_query_p95_ms_v2": float(np.percentile(lat, 95)),
            "hub_query_p50_ms_v2": float(np.percentile(lat, 50)),
            "hub_ingest_per_s_v2": ingest,
            "hub_v2_bulk_load_s": load_s,
        }
    finally:
        await engine.dispose()
