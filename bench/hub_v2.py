"""Hub release ingest and statistics queries at national scale, on SQLite and PostgreSQL.

    python -m bench.hub_v2 [--quick] [--json PATH]   (also run by `bench.privacy`)

Per engine (SQLite in a temporary directory; PostgreSQL in a throwaway server started here,
`peernet.throwaway_pg`, unless `PEERNET_PG_ADMIN_URL` names one), a fresh hub store receives
`nodes` x `months` signed releases (`tests.privacy.release_factory`: every node's own key;
one node in ten still on `peernet.monthly/v1`, the rest `peernet.workload/v2`; 8 regions)
through the real batched ingest (`hub.stats.ingest.receive_releases`: signature, content
checks, duplicate and shared-round rules, rows and running sums), `BATCH` releases per
transaction, months in order as nodes send them.

- `hub_ingest_per_s_<engine>`: releases received per second over the whole load (the
  signing of the test releases is not timed);
- `hub_query_p95_ms_<engine>` (and `_p50_`): a full statistics document (`load_month_sums`
  + `summarise`: every month's figures with intervals and rates) for a mix of unfiltered,
  region, discipline, and region-and-discipline queries over the 12 months;
  `hub_query_node_p95_ms_<engine>` with a 5-node filter (those nodes' releases rescanned);
- `hub_ingest_per_s` / `hub_query_p95_ms` (goals >= 1000 and < 50): the worse engine's.
- `hub_summary_equals_rescan_<engine>`: 1.0 when the unfiltered document from the running
  sums equals, exactly, the one from rescanning every release (checked once per engine).

--quick: 300 nodes x 3 months.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["figures"]

BATCH = 500
REGIONS = [f"region-{i}" for i in range(8)]
NOW_MS = 1_800_000_000_000  # 2027-01: every 2026 month is finished


def _releases(nodes: int, months: list[str]) -> list[tuple[dict[str, Any], str]]:
    from protocol.workload import SCHEMA as V2
    from tests.privacy.release_factory import ReleaseFactory

    fac = ReleaseFactory(seed=16)
    out = []
    for m in months:
        for i in range(nodes):
            schema = "peernet.monthly/v1" if i % 10 == 9 else V2
            out.append((fac.body(f"node-{i:05d}", m, schema=schema), REGIONS[i % len(REGIONS)]))
    return out


async def _engine(url: str, nodes: int, months: list[str], queries: int,
                  releases: list[tuple[dict[str, Any], str]]) -> dict[str, float]:
    import numpy as np

    from federation.database import Database
    from hub.stats.ingest import Offer, receive_releases
    from hub.stats.query import StatsFilter, load_month_sums
    from hub.stats.summary import summarise
    from tests.privacy.hub_fixtures import Keys, make_hub_store

    engine = await make_hub_store(url)
    db = Database(engine)
    try:
        keys = Keys([f"node-{i:05d}" for i in range(nodes)])
        offers = [Offer(b, b["release"]["node_id"], r) for b, r in releases]
        t0 = time.perf_counter()
        for j in range(0, len(offers), BATCH):
            out = await receive_releases(db, offers[j : j + BATCH], keys=keys, now_ms=NOW_MS)
            bad = [o for o in out if isinstance(o, Exception)]
            if bad:
                raise RuntimeError(f"bench release refused: {bad[0]}")
        ingest = len(offers) / (time.perf_counter() - t0)
        first, last = months[0], months[-1]
        filters = [
            StatsFilter(first, last),
            StatsFilter(first, last, region="region-3"),
            StatsFilter(first, last, disciplines=("fire", "ems")),
            StatsFilter(months[min(2, len(months) - 1)], last, region="region-1",
                        disciplines=("corrections",)),
        ]
        node_filter = StatsFilter(first, last, nodes=tuple(f"node-{i:05d}" for i in range(5)))

        async def document(f: StatsFilter, rescan: bool = False) -> dict[str, Any]:
            async with engine.connect() as conn:
                sums = await load_month_sums(conn, f, rescan=rescan)
            return summarise(sums, f.disciplines)

        async def timed(f: StatsFilter) -> float:
            t = time.perf_counter()
            doc = await document(f)
            ms = (time.perf_counter() - t) * 1000
            if f.region is None and not f.nodes and doc["months"][-1]["nodes_reporting"] != nodes:
                raise RuntimeError("the store does not hold every node-month")
            return ms

        # The bench holds every signed release it offered (tens of thousands of dicts); a
        # hub server holds none of them, and freezes what it loaded at start
        # (federation.server_process.freeze_heap). Without the freeze a full collection of
        # the bench's own input (~130 ms) lands inside a timed query and sets the p95.
        gc.freeze()
        for f in filters:
            await timed(f)  # warm
        lat = [await timed(filters[q % len(filters)]) for q in range(queries)]
        lat_node = [await timed(node_filter) for _ in range(max(queries // 4, 5))]
        gc.unfreeze()
        exact = await document(filters[0]) == await document(filters[0], rescan=True)
        return {
            "hub_ingest_per_s": ingest,
            "hub_query_p95_ms": float(np.percentile(lat, 95)),
            "hub_query_p50_ms": float(np.percentile(lat, 50)),
            "hub_query_node_p95_ms": float(np.percentile(lat_node, 95)),
            "hub_summary_equals_rescan": float(exact),
        }
    finally:
        await db.dispose()


@contextlib.contextmanager
def _postgres_admin() -> Iterator[str]:
    url = os.environ.get("PEERNET_PG_ADMIN_URL")
    if url:
        yield url
        return
    from peernet.throwaway_pg import throwaway_postgres

    with throwaway_postgres() as pg:
        yield pg.url()


async def figures(nodes: int, months: int, queries: int, tmp: Path) -> dict[str, float]:
    """Both engines' figures (module docstring), keys suffixed `_sqlite` / `_postgres`, and
    the headline (worse engine) under the bare keys."""
    from peernet.throwaway_pg import create_database

    month_names = [f"2026-{m:02d}" for m in range(1, months + 1)]
    t0 = time.perf_counter()
    releases = _releases(nodes, month_names)
    out: dict[str, float] = {"hub_nodes": float(nodes), "hub_months": float(months),
                             "hub_releases": float(len(releases)),
                             "hub_release_signing_s": time.perf_counter() - t0}
    per: dict[str, dict[str, float]] = {}
    per["sqlite"] = await _engine(f"sqlite:///{tmp / 'hub_bench.db'}", nodes, month_names,
                                  queries, releases)
    with _postgres_admin() as admin:
        url = await create_database(admin, f"hub_bench_{os.getpid()}")
        per["postgres"] = await _engine(url, nodes, month_names, queries, releases)
    for eng, figs in per.items():
        out.update({f"{k}_{eng}": v for k, v in figs.items()})
    out["hub_ingest_per_s"] = min(f["hub_ingest_per_s"] for f in per.values())
    out["hub_query_p95_ms"] = max(f["hub_query_p95_ms"] for f in per.values())
    out["hub_query_node_p95_ms"] = max(f["hub_query_node_p95_ms"] for f in per.values())
    return out


GOALS = [("hub_ingest_per_s", ">=", 1000.0), ("hub_query_p95_ms", "<", 50.0)]


def goal_lines(figs: dict[str, float]) -> list[str]:
    lines = []
    for k, op, limit in GOALS:
        if k in figs:
            ok = figs[k] >= limit if op == ">=" else figs[k] < limit
            lines.append(f"goal {k} {op} {limit:g}: {'met' if ok else 'NOT met'}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    nodes, months, queries = (300, 3, 20) if args.quick else (3_000, 12, 60)
    with tempfile.TemporaryDirectory() as tmp:
        figs = asyncio.run(figures(nodes, months, queries, Path(tmp)))
    width = max(len(k) for k in figs)
    for k, v in figs.items():
        print(f"{k:<{width}}  {v:,.4f}")
    for line in goal_lines(figs):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(figs, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
