"""Activation fan-out: one requester, the hub, N responder nodes; time until every offer is back.

    python -m bench.federation_fanout [--quick] [--json PATH]

Every server is the real application (node and hub `create_app`, SQLite, loopback ports,
one event loop; the network of `tests/federation/network.py`) with the background outbox
workers on and the system clock. Each responder auto-offers through the service API: its
`activation_request` handler applies the request and then calls
`activation_responder.make_offer` in the same inbox transaction (so the offer is queued with
it). One round: the requester's coordinator creates a request to all N agencies
(`activation_requester.create_request`, committed) and the clock stops when the requester's
inbox has applied the N-th offer. Everything between is real: envelope building (sealed and
signed per recipient), delivery, verification, the inbox transactions on both sides, the
offers' way back, plus the `activation_status` reports to the hub's log sent alongside.

Where the servers run: each agency and the hub are their own servers in production, so by
default the hub has a process of its own, the N responder nodes are spread over `--procs`
worker processes (default: the CPU count), each with its own event loop, and the requester
runs in the main process. Each of these processes freezes its startup heap out of the
garbage collector once its servers are up, as `peernet node serve` and `peernet hub serve`
do (`federation.server_process`). `--procs 0` runs everything in one event loop (then the figure is
the whole network's CPU on one core, not a latency). The table says which mode was
measured.

Sizes N = 10, 50, 200 (`--quick`: 10 and 50). Goal: p95 < 500 ms at N = 50.
Keys: `fanout_p50_ms_<N>`, `fanout_p95_ms_<N>`, and `fanout_machine_ref_ms` (the slower of two
timings of a fixed Python loop, before and after: the figures scale with it on a shared
host). `run(sizes, rounds)` is the entry point `bench.federation` can call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from federation.clock import SystemClock
from federation.server_process import freeze_heap
from node.activation import requester as requesting
from node.activation import responder as responding
from node.activation.api import ACTIVATIONS
from node.activation.models import OfferIn, RequestIn
from node.activation.runtime import handler_for, inbound_of
from protocol.envelope import Opened
from protocol.messages import MessageType

HOUR = 3_600_000
# per size: median ms until the request transaction committed, and until the first offer
PHASES: dict[int, tuple[float, float]] = {}


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
        "reporting_location": "STAGING-B", "priority": "urgent",
        "contact": {"role": "coordinator", "phone": "+1 555 0100"},
        "approver": "deputy_chief", "expires_ts": now + 4 * HOUR, "targets": targets,
    })


async def fanout(n: int, rounds: int, tmp: Path) -> list[float]:
    """Times (ms) of `rounds` fan-outs to `n` responders."""
    from tests.federation.network import make_network  # the shared network factory

    net = await make_network(n + 1, tmp_path=tmp, clock=SystemClock(), workers=True)  # type: ignore[arg-type]
    try:
        requester, responders = net.nodes[0], net.nodes[1:]
        for r in responders:
            _auto_offer(r)
        return await _rounds(requester, [r.node_id for r in responders], n, rounds)
    finally:
        await net.close()


def _auto_offer(node: Any) -> None:
    """Make `node` answer every request with an offer, through the service API."""
    offer = OfferIn.model_validate({"disciplines": {"fire": 1}, "eta_minutes": 30})
    ctx = node.app[ACTIVATIONS]
    base = handler_for(ctx)

    async def handle(conn: AsyncConnection, opened: Opened) -> None:
        await base(conn, opened)
        m = inbound_of(opened)
        await responding.make_offer(conn, ctx, m.thread_id or m.msg_id, offer, requester=m.sender)

    node.on(MessageType.ACTIVATION_REQUEST, handle)


def _free_ports(k: int) -> list[int]:
    """k distinct free loopback ports (all held open while choosing, so none repeats)."""
    import socket

    socks = [socket.socket() for _ in range(k)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _hub_child(spec: dict[str, Any], conn: Any) -> None:
    """The hub's process: start it, adopt the signed roster, say ready, serve until told
    to stop."""
    logging.disable(logging.WARNING)

    async def main() -> None:
        from federation.keystore import NodeKeys
        from federation.roster import parse_signed_roster
        from hub.config import HubSettings
        from tests.federation.network import HUB_ID, HubHandle

        hub = HubHandle(HUB_ID, NodeKeys.from_payload(spec["keys"]), spec["port"],
                        spec["db_url"], True, clock=SystemClock())  # type: ignore[arg-type]
        try:
            hub.settings = HubSettings(**spec["settings"])
            await hub.start()
            await hub.fed.roster.accept([parse_signed_roster(spec["roster"])])
        except Exception as exc:  # say why instead of leaving the parent waiting
            conn.send(f"failed: {type(exc).__name__}: {exc}")
            raise
        freeze_heap()  # as `peernet hub serve` does once it is up
        conn.send("ready")
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
        await hub.stop()

    _run_loop(main())


def _child(specs: list[dict[str, Any]], conn: Any) -> None:
    """A worker process: start these responder nodes, say ready, serve until told to stop."""
    logging.disable(logging.WARNING)

    async def main() -> None:
        from federation.keystore import NodeKeys
        from node.core.config import NodeSettings
        from tests.federation.network import NodeHandle

        nodes = []
        try:
            for spec in specs:
                n = NodeHandle(spec["node_id"], NodeKeys.from_payload(spec["keys"]),
                               spec["port"], spec["db_url"], True,
                               clock=SystemClock())  # type: ignore[arg-type]
                n.settings = NodeSettings(**spec["settings"])
                await n.start()
                _auto_offer(n)
                nodes.append(n)
        except Exception as exc:  # say why instead of leaving the parent waiting
            conn.send(f"failed: {type(exc).__name__}: {exc}")
            raise
        freeze_heap()  # as `peernet node serve` does once it is up
        conn.send("ready")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        for n in nodes:
            await n.stop()

    _run_loop(main())


async def fanout_procs(n: int, rounds: int, tmp: Path, procs: int) -> list[float]:
    """As `fanout`, with the hub in a process of its own and the responders in `procs`
    worker processes (the requester stays in this one)."""
    import multiprocessing

    from federation.keystore import NodeKeys
    from node.core.config import NodeSettings
    from tests.federation.boards import TestBoard, node_entry
    from tests.federation.network import HUB_ID, NodeHandle

    clock = SystemClock()
    board = TestBoard.make(3, 2)
    hub_keys = NodeKeys.generate()
    ids = [f"agency-{i}" for i in range(1, n + 2)]
    hub_port, *node_ports = _free_ports(n + 2)
    hub_url = f"http://127.0.0.1:{hub_port}"
    keys = {i: NodeKeys.generate() for i in ids}
    ports = dict(zip(ids, node_ports, strict=True))
    entries = [node_entry(HUB_ID, hub_keys, hub_url, roles=["hub"], disciplines=[],
                          region="state")]
    entries += [node_entry(i, keys[i], f"http://127.0.0.1:{ports[i]}", disciplines=["fire"],
                           region="north") for i in ids]
    roster = board.sign(board.roster(1, nodes=entries, now=clock.now_ms()))
    board_keys = board.board().keys

    def settings(node_id: str) -> dict[str, Any]:
        (tmp / node_id).mkdir(exist_ok=True)
        return {"node_id": node_id, "name": node_id, "data_dir": str(tmp / node_id),
                "db_url": f"sqlite:///{tmp / (node_id + '.db')}",
                "public_url": f"http://127.0.0.1:{ports[node_id]}", "hub_url": hub_url,
                "board_keys": board_keys, "board_threshold": board.threshold,
                "audit_sign_interval_s": 3600,
                # Idle pollers of a server (notifications) run once per server: packed a
                # hundred to a process here, their polls would be a hundred times an agency's.
                "notify_poll_s": 3600}

    hub_db = f"sqlite:///{tmp / 'hub.db'}"
    hub_spec = {
        "keys": hub_keys.to_payload(), "port": hub_port, "db_url": hub_db,
        "roster": roster.to_bytes(),
        "settings": {"hub_id": HUB_ID, "name": "hub", "data_dir": str(tmp / HUB_ID),
                     "db_url": hub_db, "public_url": hub_url, "board_keys": board_keys,
                     "board_threshold": board.threshold,
                     "operator_token": "bench-operator-token"},
    }
    mp = multiprocessing.get_context("spawn")
    children = []
    started: list[Any] = []
    loop = asyncio.get_running_loop()
    requester: NodeHandle | None = None

    def spawn(target: Any, *args: Any) -> None:
        parent, child = mp.Pipe()
        proc = mp.Process(target=target, args=(*args, child), daemon=True)
        proc.start()
        child.close()  # a child that dies makes recv raise instead of hang
        children.append((proc, parent))

    async def ready() -> None:  # wait for the children spawned since the last call
        for _proc, parent in children[len(started):]:
            started.append(parent)
            said = await loop.run_in_executor(None, parent.recv)
            if said != "ready":
                raise RuntimeError(f"a bench process did not start: {said}")

    try:
        spawn(_hub_child, hub_spec)
        await ready()  # the nodes fetch the roster from the hub when they start
        for k in range(procs):
            mine = ids[1 + k::procs]
            if mine:
                spawn(_child, [{"node_id": i, "keys": keys[i].to_payload(), "port": ports[i],
                                "db_url": settings(i)["db_url"], "settings": settings(i)}
                               for i in mine])
        req_id = ids[0]
        requester = NodeHandle(req_id, keys[req_id], ports[req_id], settings(req_id)["db_url"],
                               True, clock=clock)  # type: ignore[arg-type]
        requester.settings = NodeSettings(**settings(req_id))
        await requester.start()
        await ready()
        freeze_heap()  # as `peernet node serve` does; this process serves one node only
        try:
            return await _rounds(requester, ids[1:], n, rounds)
        finally:
            gc.unfreeze()  # the next size starts new servers in this process
    finally:
        for _proc, parent in children:
            with contextlib.suppress(OSError):
                parent.send("stop")
        for proc, _parent in children:
            await loop.run_in_executor(None, proc.join, 30)
        if requester is not None:
            await requester.stop()


async def _rounds(requester: Any, targets: list[str], n: int, rounds: int) -> list[float]:
    rctx = requester.app[ACTIVATIONS]
    rbase = handler_for(rctx)
    waiting: dict[str, Any] = {}

    async def on_offer(conn: AsyncConnection, opened: Opened) -> None:
        await rbase(conn, opened)
        tid = opened.inner.thread_id
        if tid in waiting:
            waiting[tid][0] += 1
            waiting[tid].append(time.perf_counter())
            if waiting[tid][0] == n:
                waiting[tid][1].set()

    requester.on(MessageType.ACTIVATION_OFFER, on_offer)
    times: list[float] = []
    phases: list[tuple[float, float]] = []
    for i in range(rounds + 1):  # round 0 warms up connections and caches
        t0 = time.perf_counter()
        async with requester.db.write() as conn:
            act = await requesting.create_request(conn, rctx, _request(targets, rctx.now()),
                                           user_id=None)
            done = asyncio.Event()
            waiting[act.activation_id] = [0, done]
        t_sent = time.perf_counter()
        async with asyncio.timeout(120):
            await done.wait()
        ms = (time.perf_counter() - t0) * 1000
        if i:
            times.append(ms)
            first = waiting[act.activation_id][2]
            phases.append(((t_sent - t0) * 1000, (first - t0) * 1000))
        await asyncio.sleep(0.3)  # let acks and hub reports drain between rounds
    PHASES[n] = (_percentile([p[0] for p in phases], 0.5),
                 _percentile([p[1] for p in phases], 0.5))
    return times


def _run_loop(coro: Any) -> Any:
    """On uvloop where installed, as the servers run (DESIGN section 8)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the dev extras
        return asyncio.run(coro)
    return uvloop.run(coro)


def machine_ref_ms() -> float:
    """CPU time of a fixed pure-Python loop: a yardstick for the machine's speed while the
    fan-out ran (about 130 ms on the 2-core development machine at its normal speed; a
    shared host slowed it by up to half during the measurements quoted in the README)."""
    t0 = time.process_time()
    acc = 0
    for i in range(3_000_000):
        acc += i * i
    return (time.process_time() - t0) * 1000


def run(sizes: list[int], rounds: dict[int, int], procs: int | None = None) -> dict[str, float]:
    """Run the fan-out for each size; print a table; the flat figures."""
    logging.disable(logging.WARNING)
    ref_before = machine_ref_ms()
    procs = (os.cpu_count() or 1) if procs is None else procs
    out: dict[str, float] = {}
    where = f"{procs} worker process(es)" if procs else "the main event loop"
    hub = "the hub in its own process" if procs else "the hub in the main process"
    print(f"fan-out: requester in the main process, {hub}, responders in {where}")
    print(f"{'N':>5} {'rounds':>7} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}"
          f" {'commit p50':>11} {'1st offer p50':>14}")
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="peernet-fanout-") as d:
            coro = (fanout_procs(n, rounds[n], Path(d), procs) if procs
                    else fanout(n, rounds[n], Path(d)))
            times = _run_loop(coro)
        p50, p95 = _percentile(times, 0.5), _percentile(times, 0.95)
        out[f"fanout_p50_ms_{n}"] = round(p50, 1)
        out[f"fanout_p95_ms_{n}"] = round(p95, 1)
        commit, first = PHASES.get(n, (float("nan"), float("nan")))
        print(f"{n:>5} {len(times):>7} {p50:>9.1f} {p95:>9.1f} {max(times):>9.1f}"
              f" {commit:>11.1f} {first:>14.1f}", flush=True)
    ref_after = machine_ref_ms()
    out["fanout_machine_ref_ms"] = round(max(ref_before, ref_after), 1)
    print(f"machine yardstick (a fixed Python loop, CPU ms; about 130 when the machine runs at "
          f"its normal speed): {ref_before:.0f} before, {ref_after:.0f} after")
    if 50 in sizes:
        ok = out["fanout_p95_ms_50"] < 500
        print(f"goal p95 < 500 ms at N = 50: {'met' if ok else 'NOT met'}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 10 and 50, fewer rounds")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--procs", type=int, default=None,
                    help="worker processes for the responders (0: all in one loop)")
    args = ap.parse_args(argv)
    sizes = [10, 50] if args.quick else [10, 50, 200]
    rounds = {10: 10, 50: 8} if args.quick else {10: 30, 50: 20, 200: 10}
    figures = run(sizes, rounds, args.procs)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
