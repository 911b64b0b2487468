"""National query benchmark (issue 19): `national_query_p95_ms`, 50 states x 12 months.

    python -m bench.interstate_national [--quick] [--json PATH]

One real hub (SQLite in a temporary directory, on an ephemeral port) with its own state's
releases for 12 months (three agencies, signed and ingested through the hub's own path),
and 49 other states' signed state statistics documents (`protocol.state_stats`, each under
its own hub key), each verified with `open_state_stats` and stored exactly as a fetch
would (`hub.national.store`). The figure is the 95th percentile of
`GET /api/v1/national?month_from=&month_to=` over HTTP with an operator token: this state's
figures computed from its running sums, the peers' stored months read, everything summed,
intervals and rates, the JSON answer. Goal < 200 ms. `--quick`: 10 states, fewer queries.

Also reported: `national_verify_store_ms_per_state` (verify and store one peer document of
12 months).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from random import Random

import aiohttp
import nacl.signing

from federation.clock import FakeClock
from hub.appkeys import DB
from hub.national.peers import Peer
from hub.national.store import store_document
from protocol.state_stats import (
    FIGURES,
    MonthFigures,
    StateStats,
    open_state_stats,
    sign_state_stats,
)
from tests.interstate.national_hubs import (
    MONTHS,
    OPERATOR_TOKEN,
    seed_releases,
    start_state,
)

__all__ = ["measure", "measure_national_query"]


def _peer_document(i: int, now_ms: int, key: nacl.signing.SigningKey) -> tuple[str, bytes]:
    rng = Random(i)
    nid = f"s{i:02d}"
    months = []
    for m in MONTHS:
        est = tuple(rng.uniform(0, 5000) for _ in FIGURES)
        var = tuple(rng.uniform(100, 20000) for _ in FIGURES)
        cov = {"referrals/encounters": rng.uniform(-50, 50),
               "follow_ups_on_time/follow_ups_due": rng.uniform(-50, 50)}
        months.append(MonthFigures(m, rng.randint(5, 2600), est, var, cov))
    doc = StateStats(nid, f"hub-{nid}", now_ms, MONTHS[0], MONTHS[-1],
                     {"measure": "zcdp", "budget_per_node_year": "1", "per_person_month": 4,
                      "per_cell": 1, "roster_version": 1}, tuple(months))
    return nid, sign_state_stats(doc, key, 1)


async def _run(quick: bool) -> dict[str, float]:
    states = 10 if quick else 50
    runs = 15 if quick else 60
    clock = FakeClock()
    with tempfile.TemporaryDirectory(prefix="peernet-national-") as tmp:
        hub = await start_state("tx", Path(tmp), f"sqlite:///{tmp}/hub.db", clock, n_nodes=3)
        try:
            await seed_releases(hub, MONTHS, seed=7)
            peers = [hub.as_peer()]
            verify_ms = []
            for i in range(1, states):
                key = nacl.signing.SigningKey.generate()
                nid, signed = _peer_document(i, clock.now_ms(), key)
                peer = Peer(nid, f"hub-{nid}", "http://127.0.0.1:9",
                            {"ed25519:1": bytes(key.verify_key)})
                t0 = time.perf_counter()
                doc = open_state_stats(signed, keys=peer.hub_sign_keys, network_id=nid,
                                       hub_id=peer.hub_id, now_ms=clock.now_ms(),
                                       max_age_ms=60_000,
                                       month_range=(MONTHS[0], MONTHS[-1]))
                async with hub.app[DB].write() as conn:
                    await store_document(conn, doc, signed, clock.now_ms())
                verify_ms.append((time.perf_counter() - t0) * 1000)
                peers.append(peer)
            hub.peers.peers = peers
            url = (f"{hub.url}/api/v1/national?month_from={MONTHS[0]}"
                   f"&month_to={MONTHS[-1]}")
            times = []
            async with aiohttp.ClientSession(
                    headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}) as http:
                for n in range(runs + 3):
                    t0 = time.perf_counter()
                    async with http.get(url) as r:
                        body = await r.json()
                        assert r.status == 200, body
                    if n >= 3:  # warm-up
                        times.append((time.perf_counter() - t0) * 1000)
            assert len(body["networks"]) == states
            assert all(len(m["states_reporting"]) == states for m in body["months"])
        finally:
            await hub.stop()
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return {"national_query_p95_ms": round(p95, 2),
            "national_query_median_ms": round(statistics.median(times), 2),
            "national_states": float(states),
            "national_verify_store_ms_per_state": round(statistics.median(verify_ms), 2)}


def measure_national_query(quick: bool) -> dict[str, float]:
    """`national_query_p95_ms` for 50 states x 12 months (quick: 10 states)."""
    return asyncio.run(_run(quick))


measure = measure_national_query  # the name bench.interstate looks for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.interstate_national")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    figures = measure_national_query(args.quick)
    for k, v in figures.items():
        print(f"{k:40s} {v:>10}")
    print("goal: national_query_p95_ms < 200")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
