"""Activation fan-out: one requester, the hub, N responder nodes; time until every offer is back.

    python -m bench.federation_fanout [--quick] [--json PATH]

Every server is the real application (node and hub `create_app`, SQLite, loopback ports,
one event loop; the network of `tests/federation/network.py`) with the background outbox
workers on and the system clock. Each responder auto-offers through the service API: its
`activation_request` handler applies the request and then calls
`activation_service.make_offer` in the same inbox transaction (so the offer is queued with
it). One round: the requester's coordinator creates a request to all N agencies
(`activation_service.create_request`, committed) and the clock stops when the requester's
inbox has applied the N-th offer. Everything between is real: envelope building (sealed and
signed per recipient), delivery, verification, the inbox transactions on both sides, the
offers' way back, plus the `activation_status` reports to the hub's log sent alongside.

Sizes N = 10, 50, 200 (`--quick`: 10 and 50). Goal: p95 < 500 ms at N = 50.
Keys: `fanout_p50_ms_<N>`, `fanout_p95_ms_<N>`. `run(sizes, rounds)` is the entry point
`bench.federation` can call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from federation.clock import SystemClock
from node import activation_service as svc
from node.activation_api import ACTIVATIONS
from node.activation_federation import handler_for, inbound_of
from node.activation_models import OfferIn, RequestIn
from protocol.envelope import Opened
from protocol.messages import MessageType

HOUR = 3_600_000


def _percentile(values: list[float], q: float) -> float:
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, round(q * (len(xs) - 1))))
    return xs[k]


def _request(targets: list[str], now: int) -> RequestIn:
    return RequestIn.model_validate({
        "incident_ref": "BENCH-1", "incident_type": "mass_casualty", "event_ts": now - HOUR,
        "affected": {"fire": 40, "ems": 12}, "interventions": ["defusing"],
        "window_start_ts": now, "window_end_ts": now + 6 * HOUR, "peers_needed": 10,
        "reporting_location": "Staging area B", "priority": "urgent",
        "contact": {"role": "Peer team coordinator", "phone": "+1 555 0100"},
        "approver": "Deputy Chief", "expires_ts": now + 4 * HOUR, "targets": targets,
    })


async def fanout(n: int, rounds: int, tmp: Path) -> list[float]:
    """Times (ms) of `rounds` fan-outs to `n` responders."""
    from tests.federation.network import make_network  # the shared network factory

    net = await make_network(n + 1, tmp_path=tmp, clock=SystemClock(), workers=True)  # type: ignore[arg-type]
    try:
        requester, responders = net.nodes[0], net.nodes[1:]
        offer = OfferIn.model_validate({"disciplines": {"fire": 1}, "eta_minutes": 30})
        for r in responders:
            ctx = r.app[ACTIVATIONS]  # type: ignore[index]
            base = handler_for(ctx)

            def auto(ctx: Any = ctx, base: Any = base) -> Any:
                async def handle(conn: AsyncConnection, opened: Opened) -> None:
                    await base(conn, opened)
                    m = inbound_of(opened)
                    await svc.make_offer(conn, ctx, m.thread_id or m.msg_id, offer,
                                         requester=m.sender)
                return handle

            r.on(MessageType.ACTIVATION_REQUEST, auto())
        rctx = requester.app[ACTIVATIONS]  # type: ignore[index]
        rbase = handler_for(rctx)
        waiting: dict[str, Any] = {}

        async def on_offer(conn: AsyncConnection, opened: Opened) -> None:
            await rbase(conn, opened)
            tid = opened.inner.thread_id
            if tid in waiting:
                waiting[tid][0] += 1
                if waiting[tid][0] == n:
                    waiting[tid][1].set()

        requester.on(MessageType.ACTIVATION_OFFER, on_offer)
        targets = [r.node_id for r in responders]
        times: list[float] = []
        for i in range(rounds + 1):  # round 0 warms up connections and caches
            t0 = time.perf_counter()
            async with requester.db.write() as conn:
                act = await svc.create_request(
                    conn, rctx, _request(targets, rctx.now()), user_id=None
                )
                done = asyncio.Event()
                waiting[act.activation_id] = [0, done]
            await asyncio.wait_for(done.wait(), timeout=120)
            ms = (time.perf_counter() - t0) * 1000
            if i:
                times.append(ms)
            await asyncio.sleep(0.2)  # let acks and hub reports drain between rounds
        return times
    finally:
        await net.close()


def run(sizes: list[int], rounds: dict[int, int]) -> dict[str, float]:
    """Run the fan-out for each size; print a table; the flat figures."""
    logging.disable(logging.WARNING)
    out: dict[str, float] = {}
    print(f"{'N':>5} {'rounds':>7} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="peernet-fanout-") as d:
            times = asyncio.run(fanout(n, rounds[n], Path(d)))
        p50, p95 = _percentile(times, 0.5), _percentile(times, 0.95)
        out[f"fanout_p50_ms_{n}"] = round(p50, 1)
        out[f"fanout_p95_ms_{n}"] = round(p95, 1)
        print(f"{n:>5} {len(times):>7} {p50:>9.1f} {p95:>9.1f} {max(times):>9.1f}", flush=True)
    if 50 in sizes:
        ok = out["fanout_p95_ms_50"] < 500
        print(f"goal p95 < 500 ms at N = 50: {'met' if ok else 'NOT met'}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 10 and 50, fewer rounds")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sizes = [10, 50] if args.quick else [10, 50, 200]
    rounds = {10: 10, 50: 8} if args.quick else {10: 30, 50: 20, 200: 10}
    figures = run(sizes, rounds)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
