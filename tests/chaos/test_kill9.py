"""kill -9 under traffic: a hub (PostgreSQL) and three agency nodes (one on PostgreSQL) as
separate OS processes, a bounded seeded stream of encounter writes, activations, hand-offs
and monthly releases; the responder `agency-2`, the hub and the requester `agency-1` are each
killed with SIGKILL at a seeded random moment and restarted a few seconds later.

Afterwards, from the databases and the API:
- every message sent (outbox rows, acks included) was delivered exactly once: one inbox row
  at its destination, counts equal per (sender, destination) pair, nothing pending, no
  relay row left; failures only as business refusals the recipient sent back;
- every encounter answered 201 is stored, and no more were stored than were attempted;
- every activation ends in a terminal state, the same on both sides of each leg;
- each hand-off answered 201 arrived once;
- every node's privacy ledger equals what the hub stored;
- every node's audit chain verifies (`peernet node audit verify`);
- no 5xx answer and no unhandled error in any server log, and none of the typed pseudonym
  inputs, the hand-off note, the passphrases or the tokens in any server log.

Figures go to the reliability results (`bench.reliability_report`).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.reliability_report import record
from tests.chaos import checks
from tests.chaos.cluster import (
    HUB_PASSPHRASE,
    NODE_PASSPHRASE,
    OPERATOR_TOKEN,
    PASSWORD,
    Cluster,
    Server,
    build_cluster,
    invoke,
)
from tests.chaos.traffic import CONTACT_NOTE, REQUESTER, Traffic, settled, wait_until

pytestmark = pytest.mark.chaos

SEED = int(os.environ.get("PEERNET_CHAOS_SEED", "20260707"))
TRAFFIC_S = 36.0  # the window in which the three kills happen
MAX_TICKS = 200
N_ACTIVATIONS = 12


async def _fault(server: Server, at: float, down: float, t0: float,
                 log: list[dict[str, Any]]) -> None:
    await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
    server.kill9()
    killed = time.monotonic() - t0
    await asyncio.sleep(down)
    server.spawn()
    await server.wait_ready()
    log.append({"server": server.name, "killed_at_s": round(killed, 1),
                "down_s": round(time.monotonic() - t0 - killed, 1)})


async def _release_months(cluster: Cluster, months: list[tuple[str, float]],
                          t0: float) -> int:
    """`peernet node release --month M` on every node at a seeded moment while it runs (the
    ledger is written by the CLI; the running node queues it to the hub on its next pass)."""
    made = 0
    env = {"PEERNET_PASSPHRASE": NODE_PASSPHRASE}
    for m, at in months:
        await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
        for n in cluster.nodes:
            await asyncio.to_thread(invoke, ["node", "release", "--config", str(n.config),
                                             "--month", m], env)
            made += 1
    return made


async def test_kill9_hub_responder_requester(tmp_path: Path, pg_admin_url: str) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    cluster = await build_cluster(
        tmp_path, n_nodes=3, pg_admin_url=pg_admin_url, pg_hub=True, pg_nodes=(2,),
        node_env={"PEERNET_RELEASE_CHECK_S": "2"},
    )
    try:
        await cluster.start_all()
        setup_s = time.monotonic() - started
        async with aiohttp.ClientSession() as http:
            traffic = Traffic(cluster, rng, http)
            fault_log: list[dict[str, Any]] = []
            t0 = time.monotonic()
            plan = [
                (cluster.node("agency-2"), rng.uniform(4, 12)),
                (cluster.hub, rng.uniform(12, 20)),
                (cluster.node(REQUESTER), rng.uniform(20, 28)),
            ]
            faults = [asyncio.create_task(_fault(s, at, rng.uniform(2, 4), t0, fault_log))
                      for s, at in plan]
            releases = asyncio.create_task(_release_months(
                cluster, [("2026-01", rng.uniform(2, 14)), ("2026-02", rng.uniform(14, 28))], t0))
            ticks = 0
            while time.monotonic() - t0 < TRAFFIC_S and ticks < MAX_TICKS:
                # Activations spread over the whole window, so every kill finds some in flight.
                due = min(N_ACTIVATIONS, 1 + int((time.monotonic() - t0) * N_ACTIVATIONS
                                                 / (TRAFFIC_S - 6)))
                create = traffic.created_ok + traffic.created_unknown < due
                tick_started = time.monotonic()
                await traffic.tick(create=create, encounters=2)
                ticks += 1
                # Pace the ticks over the whole window: a fast node must not use up
                # MAX_TICKS before the kills and the later activations happen.
                await asyncio.sleep(max(0.0, TRAFFIC_S / MAX_TICKS
                                        - (time.monotonic() - tick_started)))
            await asyncio.gather(*faults)
            released_cli = await releases
            traffic_s = time.monotonic() - t0
            assert all(s.alive for s in cluster.servers())

            # Drive every activation to its end, then let every queue drain.
            async def done() -> bool:
                await traffic.tick(create=False, encounters=0)
                return settled(await traffic.states())

            all_settled = await wait_until(done, timeout=75, interval=0.3)
            final_states = await traffic.states()

            async def quiet() -> bool:
                pending = await checks.pending_counts(cluster)
                led = await checks.ledgers(cluster)
                return not any(pending.values()) and led.ok and led.node_entries >= 6

            drained = await wait_until(quiet, timeout=60, interval=0.5)
            settle_s = time.monotonic() - t0 - traffic_s
            pending = await checks.pending_counts(cluster)
        cluster.stop_all()  # graceful: the last audit head is signed at shutdown

        d = await checks.delivery(cluster)
        led = await checks.ledgers(cluster)
        stored = await _stored_encounters(cluster)
        handoffs_in = len(await checks.rows(
            cluster, cluster.node(REQUESTER), "SELECT id FROM handoffs WHERE direction = 'in'"))
        audits = [await asyncio.to_thread(
            invoke, ["node", "audit", "verify", "--config", str(n.config), "--offline"],
            {"PEERNET_PASSPHRASE": NODE_PASSPHRASE}) for n in cluster.nodes]
        logs = cluster.logs()
        secrets = [*traffic.typed, CONTACT_NOTE, NODE_PASSPHRASE, HUB_PASSPHRASE, PASSWORD,
                   OPERATOR_TOKEN, *(n.token for n in cluster.nodes)]
        leaked = [f"{name}: {s[:8]}..." for name, text in logs.items() for s in secrets
                  if s in text]
        unhandled = [f"{name}: {line}" for name, text in logs.items()
                     for line in text.splitlines() if "unhandled error" in line
                     or "Traceback" in line]

        ok_ids = {n: set(ids) for n, ids in traffic.encounters.items()}
        missing = {n: ids - stored.get(n, set()) for n, ids in ok_ids.items()}
        extra = {n: len(stored.get(n, set())) - len(ok_ids.get(n, set()))
                 for n in stored}
        figures = {
            **d.figures(),
            "encounters_201": sum(len(v) for v in ok_ids.values()),
            "encounters_unanswered": sum(traffic.encounter_unknown.values()),
            "encounters_stored": sum(len(v) for v in stored.values()),
            "encounters_missing": sum(len(v) for v in missing.values()),
            "activations": len(traffic.activations),
            "activations_settled": sum(1 for r in final_states.values()
                                       if settled({"x": r})),
            "handoffs_201": len(traffic.handoffs_ok), "handoffs_received": handoffs_in,
            "ledger_entries": led.node_entries, "hub_releases": led.hub_entries,
            "api_calls": traffic.calls, "api_unanswered": traffic.unanswered,
            "api_5xx": len(traffic.server_errors), "kills": 3,
            "settle_s": round(settle_s, 1), "setup_s": round(setup_s, 1),
            "p99_api_ms": round(1000 * _p99(traffic.latencies), 1),
            "log_bytes": sum(len(t) for t in logs.values()), "secrets_in_logs": len(leaked),
            "api_4xx": sum(v for k, v in traffic.statuses.items() if 400 <= k < 500),
            **{f"create_refused_{k}": v for k, v in traffic.create_refused.items()},
        }
        problems = {
            "settled": all_settled, "drained": drained, "pending": pending,
            "lost": d.lost[:5], "duplicated": d.duplicated[:5], "failed": d.failed_bad[:5],
            "ledgers": led.mismatches[:3], "missing": {k: len(v) for k, v in missing.items()},
            "5xx": traffic.server_errors[:5], "unhandled": unhandled[:5], "leaked": leaked[:5],
            "states": {k: v for k, v in final_states.items() if not settled({"x": v})},
        }
        passed = (all_settled and drained and d.ok and led.ok and not any(missing.values())
                  and all(e <= traffic.encounter_unknown[n] for n, e in extra.items())
                  and handoffs_in == len(traffic.handoffs_ok) + 0 * traffic.handoffs_unknown
                  and not traffic.server_errors and not unhandled and not leaked)
        record(
            "chaos-kill9", area="fault",
            case="kill -9 of a responder node, the hub and the requester under traffic",
            how=f"hub (PostgreSQL) + 3 nodes (agency-2 on PostgreSQL) as `peernet ... serve` "
                f"processes; {traffic_s:.0f} s of encounter writes, {len(traffic.activations)} "
                f"activations with hand-offs, {released_cli} CLI releases plus the scheduled "
                f"one; SIGKILL (seed {SEED}): " + "; ".join(
                    f"{f['server']} at {f['killed_at_s']} s, back after {f['down_s']} s"
                    for f in fault_log),
            result=("every message delivered exactly once, every 201 encounter stored, every "
                    "activation terminal on both sides, ledgers = hub, audit chains verify")
            if passed else f"FAILED: {problems}",
            notes=[] if all_settled else [
                "a leg's two copies diverged: a thread message that overtook an earlier one "
                f"was refused for good ({dict(d.business_refusals)}); see the states in the "
                "result"],
            figures=figures, passed=passed, duration_s=time.monotonic() - started,
        )
        assert all_settled, problems["states"]
        assert drained, pending
        assert d.ok, problems
        assert led.ok, led.mismatches
        assert not any(missing.values()), missing
        for n, e in extra.items():
            assert e <= traffic.encounter_unknown[n], (n, e)
        assert handoffs_in == len(traffic.handoffs_ok), (handoffs_in, traffic.handoffs_ok)
        assert not traffic.server_errors, traffic.server_errors[:5]
        assert not unhandled, unhandled[:5]
        assert not leaked, leaked[:5]  # typed inputs, notes, passphrases, tokens
        assert all("audit log intact" in a for a in audits), audits
        assert led.node_entries >= 6  # 2 CLI months per node, plus the scheduled one
        assert len(traffic.activations) >= 4
    finally:
        await cluster.close()


async def _stored_encounters(cluster: Cluster) -> dict[str, set[str]]:
    out = {}
    for n in cluster.nodes:
        got = await checks.rows(cluster, n, "SELECT id FROM encounters")
        out[n.name] = {str(_uuid(r[0])) for r in got}
    return out


def _uuid(v: Any) -> Any:
    import uuid

    if isinstance(v, uuid.UUID):
        return v
    s = str(v)
    return uuid.UUID(s) if len(s) in (32, 36) else s


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(0.99 * len(s)))]
