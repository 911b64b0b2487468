"""Privacy benchmark: release building on the node, statistics queries on the hub.

    python -m bench.privacy [--quick] [--json PATH]

- `release_s_<size>` / `release_peak_mib_<size>`: one node-month release (truncation in
  OpenDP, discrete noise, signing) over synthetic encounter columns of that size, measured
  in a fresh subprocess once the noise scale is cached (the calibration is timed
  separately as `calibrate_s`). Peak memory is the tracemalloc peak of the release step
  (numpy reports its buffers to tracemalloc); `rss_mib_<size>` is the subprocess's
  ru_maxrss, which also holds the interpreter, OpenDP and the input columns.
- `release_db_s`: the whole ledger path through SQLite (read the month's encounters, build,
  sign, write the ledger row) at `release_db_rows` encounters.
- `hub_query_p95_ms`: p95 of a full statistics document (all months' figures with
  intervals and rates) over 3,000 nodes x 12 months of releases, for a mix of unfiltered,
  region and discipline queries; `hub_query_node_p95_ms` with a 5-node filter. The store is
  bulk-loaded (releases rows plus the running totals the hub keeps on receipt);
  `hub_ingest_per_s` times the real receive path (verify, check, store) on real signed
  releases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}


def _child(n: int) -> dict[str, float]:
    import nacl.signing

    from node.privacy.noise import calibrate
    from node.privacy.release import build_release
    from node.privacy.schema import ReleasePolicy
    from tests.privacy.synthetic import synthetic_columns

    cols = synthetic_columns(n, max(n // 4, 1), seed=1)
    policy = ReleasePolicy()
    t0 = time.perf_counter()
    calibrate(policy)
    cal_s = time.perf_counter() - t0
    key = nacl.signing.SigningKey(bytes(32))
    tracemalloc.start()
    t0 = time.perf_counter()
    build_release(cols, node_id="bench-node", month="2026-01", policy=policy,
                  signing_key=key, key_version=1, now_ms=1_780_000_000_000)
    secs = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    # a second release without tracemalloc overhead
    t0 = time.perf_counter()
    build_release(cols, node_id="bench-node", month="2026-02", policy=policy,
                  signing_key=key, key_version=1, now_ms=1_780_000_000_000)
    secs = min(secs, time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"s": secs, "peak_mib": peak, "rss_mib": rss, "calibrate_s": cal_s}


def _run_child(n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.privacy", "--child", str(n)],
        check=True, capture_output=True, text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def _release_db(rows: int, tmp: Path) -> float:
    import nacl.signing

    from node.privacy.ledger import record_release
    from node.privacy.noise import calibrate
    from node.privacy.schema import ReleasePolicy
    from tests.privacy.node_records import add_encounters, make_node_db

    db = await make_node_db(f"sqlite:///{tmp / 'node.db'}")
    try:
        await add_encounters(db, "2026-01", rows, max(rows // 4, 1), seed=5)
        calibrate(ReleasePolicy())
        t0 = time.perf_counter()
        await record_release(
            db, node_id="bench-node", month="2026-01", policy=ReleasePolicy(),
            signing_key=nacl.signing.SigningKey(bytes(32)), key_version=1,
            now_ms=1_790_000_000_000,
        )
        return time.perf_counter() - t0
    finally:
        await db.dispose()


async def _hub(nodes: int, months: int, queries: int, tmp: Path) -> dict[str, float]:
    import numpy as np
    from sqlalchemy import insert

    from hub.stats.aggregates import AggregateRelease, AggregateTotal, receive_release
    from hub.stats.estimates import CELL_KEYS, release_variance
    from hub.stats.query import StatsFilter, load_month_sums
    from hub.stats.summary import summarise
    from node.privacy.noise import calibrate
    from node.privacy.schema import ReleasePolicy
    from tests.privacy.hub_fixtures import Keys, make_hub_store, release_body

    url = os.environ.get("PEERNET_PG_URL") or f"sqlite:///{tmp / 'hub.db'}"
    engine = await make_hub_store(url)
    try:
        cal = calibrate(ReleasePolicy())
        var = release_variance("gaussian", cal.scale)
        rng = np.random.default_rng(3)
        regions = [f"region-{i}" for i in range(8)]
        month_names = [f"2026-{m:02d}" for m in range(1, months + 1)]
        n = len(CELL_KEYS)
        # Real receive path on a sample (for the ingest rate and the node-filter bodies).
        sample_nodes = [f"node-{i:04d}" for i in range(5)]
        keys = Keys(sample_nodes)
        bodies = [release_body(nd, m, seed=i, now_ms=1_800_000_000_000)
                  for i, nd in enumerate(sample_nodes) for m in month_names]
        t0 = time.perf_counter()
        for b in bodies:
            await receive_release(engine, b, sender=b["release"]["node_id"], keys=keys,
                                  region=regions[0], now_ms=1_800_000_000_000)
        ingest = len(bodies) / (time.perf_counter() - t0)
        # Bulk load the rest: the rows and running totals receipt would have written.
        totals: dict[tuple[str, str], Any] = {}
        rel_rows = []
        for i in range(len(sample_nodes), nodes):
            region = regions[i % len(regions)]
            for m in month_names:
                vec = rng.poisson(3, n) + np.rint(rng.normal(0, cal.scale, n)).astype(int)
                acc = totals.setdefault((m, region), [np.zeros(n, dtype=np.int64), 0])
                acc[0] += vec
                acc[1] += 1
                rel_rows.append({
                    "release_id": f"{i:013d}{m.replace('-', '')}".ljust(26, "0")[:26],
                    "node_id": f"node-{i:04d}", "month": m, "region": region,
                    "schema_name": "peernet.monthly/v1", "measure": "zcdp",
                    "mechanism": "gaussian", "scale": repr(cal.scale), "variance": var,
                    "budget_spent": "0.08333", "per_person_month": 4, "per_cell": 1,
                    "opendp_version": "0.16.0", "received_at": 0, "body_sha256": "x" * 43,
                    "body": b"{}",
                })
        async with engine.begin() as conn:
            for j in range(0, len(rel_rows), 2000):
                await conn.execute(insert(AggregateRelease), rel_rows[j : j + 2000])
            from sqlalchemy import update

            for (m, region), (vec, cnt) in totals.items():
                existing = await conn.execute(
                    AggregateTotal.__table__.select().where(
                        AggregateTotal.month == m, AggregateTotal.region == region
                    )
                )
                have = {r.cell for r in existing}
                new = [{"month": m, "region": region, "cell": c, "value_sum": int(vec[c]),
                        "var_sum": var * cnt, "nodes": cnt} for c in range(n) if c not in have]
                if new:
                    await conn.execute(insert(AggregateTotal), new)
                for c in have:
                    await conn.execute(
                        update(AggregateTotal)
                        .where(AggregateTotal.month == m, AggregateTotal.region == region,
                               AggregateTotal.cell == c)
                        .values(value_sum=AggregateTotal.value_sum + int(vec[c]),
                                var_sum=AggregateTotal.var_sum + var * cnt,
                                nodes=AggregateTotal.nodes + cnt)
                    )
        filters = [
            StatsFilter(month_names[0], month_names[-1]),
            StatsFilter(month_names[0], month_names[-1], region="region-3"),
            StatsFilter(month_names[0], month_names[-1], disciplines=("fire", "ems")),
            StatsFilter(month_names[2], month_names[-1], region="region-1",
                        disciplines=("corrections",)),
        ]
        node_filter = StatsFilter(month_names[0], month_names[-1], nodes=tuple(sample_nodes))

        async def timed(f: StatsFilter) -> float:
            t = time.perf_counter()
            async with engine.connect() as conn:
                sums = await load_month_sums(conn, f)
            doc = summarise(sums, f.disciplines)
            assert doc["months"]
            return (time.perf_counter() - t) * 1000

        for f in filters:
            await timed(f)  # warm
        lat = [await timed(filters[q % len(filters)]) for q in range(queries)]
        lat_node = [await timed(node_filter) for _ in range(max(queries // 4, 5))]
        reported = (await _reporting(engine, month_names[-1]))
        return {
            "hub_query_p95_ms": float(np.percentile(lat, 95)),
            "hub_query_p50_ms": float(np.percentile(lat, 50)),
            "hub_query_node_p95_ms": float(np.percentile(lat_node, 95)),
            "hub_ingest_per_s": ingest,
            "hub_nodes": float(reported),
            "hub_months": float(months),
        }
    finally:
        await engine.dispose()


async def _reporting(engine: Any, month: str) -> int:
    from hub.stats.query import StatsFilter, reporting

    async with engine.connect() as conn:
        return (await reporting(conn, StatsFilter(month, month))).get(month, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(_child(args.child)))
        return
    figures: dict[str, float] = {}
    sizes = SIZES
    for label, n in sizes.items():
        r = _run_child(n)
        figures[f"release_s_{label}"] = r["s"]
        figures[f"release_peak_mib_{label}"] = r["peak_mib"]
        figures[f"rss_mib_{label}"] = r["rss_mib"]
        figures["calibrate_s"] = r["calibrate_s"]
    db_rows = 5_000 if args.quick else 50_000
    nodes, queries = (3_000, 60) if not args.quick else (3_000, 40)
    with tempfile.TemporaryDirectory() as tmp:
        figures["release_db_rows"] = float(db_rows)
        figures["release_db_s"] = asyncio.run(_release_db(db_rows, Path(tmp)))
        figures.update(asyncio.run(_hub(nodes, 12, queries, Path(tmp))))
    width = max(len(k) for k in figures)
    print(f"{'figure':<{width}}  value")
    for k, v in figures.items():
        print(f"{k:<{width}}  {v:,.4f}")
    goals = [("release_s_1m", 2.0), ("release_peak_mib_1m", 800.0), ("hub_query_p95_ms", 100.0)]
    for k, limit in goals:
        print(f"goal {k} < {limit}: {'met' if figures[k] < limit else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
