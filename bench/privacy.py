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
- hub ingest and queries (`bench/hub_v2.py`), on SQLite and on PostgreSQL (a throwaway
  server started for the run): 3,000 nodes x 12 months of signed releases (one node in ten
  on v1, the rest v2; `--quick`: 300 x 3) received through the real batched ingest, then
  the query mix (unfiltered, region, discipline, both) as full statistics documents.
  `hub_ingest_per_s_<engine>` (releases/s), `hub_query_p95_ms_<engine>` (and p50, and
  `hub_query_node_p95_ms_<engine>` with a 5-node filter), `hub_summary_equals_rescan_<engine>`;
  the headline `hub_ingest_per_s` (goal >= 1000) and `hub_query_p95_ms` (goal < 50) are the
  worse engine's.

Statewide figures (issue 15), on one synthetic state generated in the run
(`tests.privacy.synthetic_state`: 40 agencies in 4 regions, month sizes log-uniform from 5
to 300 encounters, truncated as the node truncates; default policy), the v1 design measured
on the same data. Noise is OpenDP's discrete Gaussian at each release's scale (sampled
exactly, vectorised); every estimate goes through the hub's own code
(`hub.stats.summary.summarise`, i.e. the consistent v2 estimator).
- `state_total_se_ratio_local`: SE of the monthly state total from v2 local releases (40
  noisy releases, combined) / from v1 (the sum of 180 cells of 40 releases); from the exact
  variances the hub reports (`..._empirical`: the same ratio from the trials' errors);
- `state_total_se_ratio_shared`: the same for shared aggregation (per region, each of the
  two aggregators adds one noise per key at the group's scale: variance 2 sigma_g^2);
- `state_total_coverage_local` / `_shared` (and `_v1`): the share of trials whose 95%
  interval covers the truncated true state total;
- `region_rate_blank_fraction_shared` (and `_local`): the share of region-months whose
  referral rate is shown blank (its encounters estimate not positive).
- `shared_round_s_500` (500 nodes' shares through a real hub and helper): from
  `bench/shared_round.py` when that module exists (its `figures(quick)`); see
  `_shared_round_figures`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench import hub_v2

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


def _statewide(trials: int) -> dict[str, float]:
    """The issue 15 figures on one synthetic state (module docstring)."""
    import numpy as np

    from hub.stats.estimates import release_variance
    from hub.stats.summary import MonthSums, summarise
    from node.privacy.noise import calibrate
    from node.privacy.schema import ReleasePolicy
    from protocol.vocabulary import Measure
    from protocol.workload import KEY_GROUP, WORKLOAD_KEYS, group_scales
    from tests.privacy.synthetic_state import discrete_gaussian, synthetic_state

    policy = ReleasePolicy()
    state = synthetic_state(agencies=40, regions=4, low=5, high=300,
                            per_person_month=policy.per_person_month,
                            per_cell=policy.per_cell, seed=15)
    rng = np.random.default_rng(2015)
    n1, n2 = state.v1.shape[1], len(WORKLOAD_KEYS)
    # v1: one 222-cell release per agency, one scale
    cal = calibrate(policy)
    var1 = release_variance(cal.mechanism.value, cal.scale)
    # v2: each group at its share of the allowance
    sc = group_scales(Measure(policy.measure), policy.monthly_allowance, None,
                      policy.per_person_month, policy.per_cell)
    scale2 = np.array([sc[KEY_GROUP[k]] for k in WORKLOAD_KEYS])
    var2 = np.array([release_variance(cal.mechanism.value, x) for x in scale2])
    true_total = float(state.v2[:, 0].sum())
    if WORKLOAD_KEYS[0] != "total":
        raise RuntimeError("the workload's first key is no longer the total")

    def noise2(draws: int) -> Any:
        out = np.zeros((trials, n2), dtype=np.int64)
        for x in np.unique(scale2):
            cols = np.flatnonzero(scale2 == x)
            out[:, cols] = discrete_gaussian(rng, float(x), (draws, trials, len(cols))).sum(0)
        return out

    zeros1 = np.zeros(n1)
    rows = {r: state.region_rows(r) for r in state.regions}
    v1_truth = state.v1.sum(axis=0)
    out: dict[str, float] = {"state_true_total": true_total,
                             "state_agencies": float(len(state.sizes)),
                             "state_trials": float(trials)}
    # v1 on the same data: noise on every cell of every agency's release
    noisy1 = v1_truth + discrete_gaussian(rng, cal.scale, (len(state.sizes), trials, n1)).sum(0)
    v1_err, v1_hits, v1_var = [], 0, 0.0
    for t in range(trials):
        doc = summarise({"2026-01": MonthSums(noisy1[t].astype(float),
                                              np.full(n1, var1 * len(state.sizes)), 40)})
        fig = doc["total"]["encounters"]
        v1_err.append(fig["estimate"] - true_total)
        v1_hits += int(fig["interval"][0] <= true_total <= fig["interval"][1])
        v1_var = fig["se"] ** 2
    out["state_total_se_v1"] = float(np.sqrt(v1_var))
    out["state_total_coverage_v1"] = v1_hits / trials
    for mode in ("local", "shared"):
        per_region = {}
        for r, ix in rows.items():
            draws = 2 if mode == "shared" else len(ix)
            per_region[r] = (state.v2[ix].sum(axis=0) + noise2(draws), var2 * draws)
        errs, hits, blank, se = [], 0, 0, 0.0
        for t in range(trials):
            v2 = {r: (y[t].astype(float), v) for r, (y, v) in per_region.items()}
            doc = summarise({"2026-01": MonthSums(zeros1, zeros1, 40, v2)})
            fig = doc["total"]["encounters"]
            errs.append(fig["estimate"] - true_total)
            hits += int(fig["interval"][0] <= true_total <= fig["interval"][1])
            se = fig["se"]
            for r in rows:
                reg = summarise({"2026-01": MonthSums(zeros1, zeros1, 10, {r: v2[r]})})
                blank += int(reg["total"]["referral_rate"] is None)
        out[f"state_total_se_{mode}"] = se
        out[f"state_total_se_ratio_{mode}"] = se / out["state_total_se_v1"]
        out[f"state_total_se_ratio_{mode}_empirical"] = float(
            np.std(errs, ddof=1) / np.std(v1_err, ddof=1))
        out[f"state_total_coverage_{mode}"] = hits / trials
        out[f"region_rate_blank_fraction_{mode}"] = blank / (trials * len(rows))
    return out


def _shared_round_figures(quick: bool) -> dict[str, float]:
    """Hook for the shared round's timing (`shared_round_s_500`: 500 nodes' shares through a
    real hub and helper on SQLite to published figures): `bench/shared_round.py`'s
    `figures(quick)` when it has one, else its `shared_round_s(500)`; no module, no figure."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("bench.shared_round") is None:
        return {}
    mod = importlib.import_module("bench.shared_round")
    if hasattr(mod, "figures"):
        result: dict[str, float] = mod.figures(quick=quick)
        return result
    return {"shared_round_s_500": float(mod.shared_round_s(500))}


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
    nodes, months, queries = (300, 3, 20) if args.quick else (3_000, 12, 60)
    with tempfile.TemporaryDirectory() as tmp:
        figures["release_db_rows"] = float(db_rows)
        figures["release_db_s"] = asyncio.run(_release_db(db_rows, Path(tmp)))
        figures.update(asyncio.run(hub_v2.figures(nodes, months, queries, Path(tmp))))
    figures.update(_statewide(500 if args.quick else 2000))
    figures.update(_shared_round_figures(args.quick))
    width = max(len(k) for k in figures)
    print(f"{'figure':<{width}}  value")
    for k, v in figures.items():
        print(f"{k:<{width}}  {v:,.4f}")
    goals = [("release_s_1m", 2.0), ("release_peak_mib_1m", 800.0),
             ("state_total_se_ratio_local", 0.20), ("state_total_se_ratio_shared", 0.10),
             ("region_rate_blank_fraction_shared", 0.05), ("shared_round_s_500", 30.0)]
    for k, limit in goals:
        if k in figures:
            print(f"goal {k} <= {limit}: {'met' if figures[k] <= limit else 'NOT met'}")
    for line in hub_v2.goal_lines(figures):
        print(line)
    for k in ("state_total_coverage_local", "state_total_coverage_shared"):
        ok = 0.93 <= figures[k] <= 0.97
        print(f"goal {k} in [0.93, 0.97]: {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
