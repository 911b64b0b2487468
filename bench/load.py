"""Load: 200 concurrent clients writing encounters and 50 concurrent activation clients for a
bounded time against one node on PostgreSQL; no lost or duplicated writes; latencies.

    python -m bench.load [--quick] [--seconds S] [--workers N] [--json PATH]

Setup (real CLI and processes, `tests.chaos.cluster`): a hub and three nodes; `agency-1`,
the node under load (`peernet node serve`, or `--workers N` of it), runs on PostgreSQL (a
throwaway server unless `PEERNET_PG_URL` is set),
the hub and the two responders on SQLite. Load, for `--seconds` (default 60, `--quick` 10):

- 200 encounter clients, each writing encounters one after another through the JSON API
  (`POST /api/v1/encounters`, coordinator token);
- 50 activation clients, each creating an activation request to both responders
  (`POST /api/v1/activations`: rows, history, two outbox rows and an audit entry in one
  transaction) and then cancelling it (two more messages).

Checks after the clients stop and the federation drains: every encounter answered 201 is
stored and nothing else was (`encounters_lost`, `encounters_duplicated`); every activation
answered 201 is stored once; every message queued by every server reached its destination
exactly once (`messages_lost`, `messages_duplicated`). Latency per request kind
(`encounter_p50_ms`, `..._p95_ms`, `..._p99_ms`, the same for `activation_`) and over every
request of the run (`load_p99_ms`, issue 16 goal < 500 with nothing lost or duplicated),
throughput (`encounters_per_s`, `activations_per_s`), `http_5xx`, `unanswered`, and the
node process's CPU while the clients ran (`node_cpu_s`, `node_cpu_ms_per_request`): on a
shared machine the figure to compare between runs, when throughput and latency move with
the neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["main", "run_load"]

ENCOUNTER_CLIENTS = 200
ACTIVATION_CLIENTS = 50


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(1000 * s[min(len(s) - 1, int(q * len(s)))], 1)


async def run_load(root: Path, pg_admin_url: str, seconds: float, *,
                   seed: int = 7, workers: int = 1) -> dict[str, Any]:
    from tests.chaos import checks
    from tests.chaos.cluster import build_cluster
    from tests.chaos.traffic import Traffic

    rng = random.Random(seed)
    cluster = await build_cluster(root, n_nodes=3, pg_admin_url=pg_admin_url, pg_nodes=(1,),
                                  node_env={"PEERNET_DB_POOL_SIZE": "40"})
    try:
        node = cluster.node("agency-1")
        if workers > 1:  # `peernet node serve --workers N`: N processes, one address
            node.serve_args = ("--workers", str(workers))
        await cluster.start_all()
        headers = {"Authorization": f"Bearer {node.token}"}
        lat: dict[str, list[float]] = {"encounter": [], "activation": [], "cancel": []}
        ok_encounters: list[str] = []
        ok_activations: list[str] = []
        statuses: Counter[int] = Counter()
        unanswered = Counter[str]()
        conn = aiohttp.TCPConnector(limit=ENCOUNTER_CLIENTS + ACTIVATION_CLIENTS + 10)
        async with aiohttp.ClientSession(connector=conn,
                                         timeout=aiohttp.ClientTimeout(total=60)) as http:
            helper = Traffic(cluster, rng, http)
            end = time.monotonic() + seconds

            async def post(kind: str, path: str, body: Any) -> tuple[int, Any] | None:
                t0 = time.monotonic()
                try:
                    async with http.post(node.url + path, json=body, headers=headers) as r:
                        data = await r.json(content_type=None)
                        statuses[r.status] += 1
                        lat[kind].append(time.monotonic() - t0)
                        return r.status, data
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    unanswered[kind] += 1
                    return None

            async def encounter_client() -> None:
                while time.monotonic() < end:
                    res = await post("encounter", "/api/v1/encounters", helper.encounter_body())
                    if res is not None and res[0] == 201:
                        ok_encounters.append(str(res[1]["id"]))

            async def activation_client() -> None:
                while time.monotonic() < end:
                    res = await post("activation", "/api/v1/activations",
                                     helper.request_body(["agency-2", "agency-3"]))
                    if res is None or res[0] != 201:
                        continue
                    aid = res[1]["activation_id"]
                    ok_activations.append(aid)
                    await post("cancel", f"/api/v1/activations/{aid}/cancel",
                               {"reason": "resolved_locally"})

            t_start = time.monotonic()
            cpu_start = _cpu_s(node)
            await asyncio.gather(*(encounter_client() for _ in range(ENCOUNTER_CLIENTS)),
                                 *(activation_client() for _ in range(ACTIVATION_CLIENTS)))
            elapsed = time.monotonic() - t_start
            cpu_load = _cpu_s(node) - cpu_start
        t_drain = time.monotonic()
        drained = False
        while time.monotonic() - t_drain < 180:
            if not any((await checks.pending_counts(cluster)).values()):
                drained = True
                break
            await asyncio.sleep(0.5)
        drain_s = time.monotonic() - t_drain
        stored = {str(r[0]).replace("-", "") for r in await checks.rows(
            cluster, node, "SELECT id FROM encounters")}
        ok_set = {e.replace("-", "") for e in ok_encounters}
        acts = [r[0] for r in await checks.rows(
            cluster, node, "SELECT activation_id FROM activations WHERE side = 'out'")]
        d = await checks.delivery(cluster)
        return {
            "seconds": round(elapsed, 1),
            "node_workers": workers,
            "encounter_clients": ENCOUNTER_CLIENTS,
            "activation_clients": ACTIVATION_CLIENTS,
            "encounters_ok": len(ok_encounters),
            "encounters_stored": len(stored),
            "encounters_lost": len(ok_set - stored),
            "encounters_duplicated": len(stored) - len(ok_set) - unanswered["encounter"]
            if len(stored) > len(ok_set) + unanswered["encounter"] else 0,
            "activations_ok": len(ok_activations),
            "activations_stored": len(acts),
            "activations_lost": len(set(ok_activations) - set(acts)),
            "activations_duplicated": len(acts) - len(set(acts)),
            "messages_sent": d.sent,
            "messages_delivered_once": d.delivered,
            "messages_lost": len(d.lost),
            "messages_duplicated": len(d.duplicated),
            "messages_pending": len(d.pending),
            "drained": drained,
            "drain_s": round(drain_s, 1),
            "encounters_per_s": round(len(ok_encounters) / elapsed, 1),
            "activations_per_s": round(len(ok_activations) / elapsed, 1),
            "encounter_p50_ms": _pct(lat["encounter"], 0.50),
            "encounter_p95_ms": _pct(lat["encounter"], 0.95),
            "encounter_p99_ms": _pct(lat["encounter"], 0.99),
            "activation_p50_ms": _pct(lat["activation"], 0.50),
            "activation_p95_ms": _pct(lat["activation"], 0.95),
            "activation_p99_ms": _pct(lat["activation"], 0.99),
            "cancel_p99_ms": _pct(lat["cancel"], 0.99),
            "load_p99_ms": _pct([v for kind in lat.values() for v in kind], 0.99),
            # CPU of the node process while the clients ran: the figure to compare between
            # runs on a shared machine (throughput and latency move with the neighbours).
            "node_cpu_s": round(cpu_load, 2),
            "node_cpu_ms_per_request": round(1000 * cpu_load / max(1, sum(
                len(v) for v in lat.values())), 3),
            "http_5xx": sum(v for k, v in statuses.items() if k >= 500),
            "http_other": sum(v for k, v in statuses.items() if k not in (200, 201)
                              and k < 500),
            "unanswered": sum(unanswered.values()),
        }
    finally:
        await cluster.close()


def _cpu_s(server: Any) -> float:
    """User + system CPU seconds so far of `server`'s process and of its workers (its child
    processes, with `--workers`) (Linux /proc; 0 elsewhere)."""
    proc: Any = getattr(server, "proc", None)
    if proc is None:
        return 0.0
    ticks = 0
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(pid) == proc.pid or int(fields[1]) == proc.pid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def passed(fig: dict[str, Any]) -> bool:
    return (fig["encounters_lost"] == 0 and fig["encounters_duplicated"] == 0
            and fig["activations_lost"] == 0 and fig["activations_duplicated"] == 0
            and fig["messages_lost"] == 0 and fig["messages_duplicated"] == 0
            and bool(fig["drained"]) and fig["http_5xx"] == 0)


async def _main_async(seconds: float, json_path: Path | None, workers: int = 1) -> int:
    from bench.reliability_report import record
    from peernet.throwaway_pg import start_throwaway

    server = None
    admin = os.environ.get("PEERNET_PG_URL")
    if not admin:
        server = start_throwaway()
        admin = server.url()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="pn-load-") as tmp:
            fig = await run_load(Path(tmp), admin, seconds, workers=workers)
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop()
    ok = passed(fig)
    writes = fig["encounters_per_s"] + 2 * fig["activations_per_s"]
    clients = ENCOUNTER_CLIENTS + ACTIVATION_CLIENTS
    notes = [f"latency is queueing: {clients} clients in flight over about {writes:.0f} "
             f"writes/s gives about {clients / max(writes, 1):.1f} s per request "
             "(Little's law); the node's write throughput on this machine is the figure to "
             "improve, not a timeout"]
    width = max(len(k) for k in fig)
    for k, v in fig.items():
        print(f"{k:<{width}}  {v}")
    lost = fig["encounters_lost"] + fig["activations_lost"] + fig["messages_lost"]
    duplicated = (fig["encounters_duplicated"] + fig["activations_duplicated"]
                  + fig["messages_duplicated"])
    print(f"load_p99_ms {fig['load_p99_ms']} (goal < 500), lost = {lost}, "
          f"duplicated = {duplicated}")
    suffix = f"-workers{workers}" if workers > 1 else ""
    served = f" served by {workers} worker processes" if workers > 1 else ""
    record(f"load-{int(seconds)}s{suffix}", area="load",
           case=f"200 encounter writers + 50 activation clients for {int(seconds)} s, one node "
                f"on PostgreSQL{served}",
           how="`python -m bench.load`: `peernet node serve` on PostgreSQL (hub and two "
               "responders on SQLite); JSON API with a coordinator token; activations fan out "
               "to two responders and are cancelled; then the federation drains",
           result="no lost or duplicated encounter, activation or message" if ok else "FAILED",
           figures=fig, passed=ok, duration_s=time.monotonic() - started, notes=notes)
    if json_path is not None:
        await asyncio.to_thread(json_path.write_text, json.dumps(fig, indent=1) + "\n")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="encounter and activation load on one node")
    ap.add_argument("--quick", action="store_true", help="10 seconds")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--workers", type=int, default=1,
                    help="the node under load as `peernet node serve --workers N`")
    args = ap.parse_args(argv)
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    return asyncio.run(_main_async(seconds, args.json, args.workers))


if __name__ == "__main__":
    sys.exit(main())
