"""Interstate fan-out: a requester in one network asks 50 agencies of another network
through both networks' hubs; the time until every offer is back.

    python -m bench.interstate_fanout [--quick] [--json PATH] [--procs K]

Two networks, each with its own board (2 of 3), roster and hub: network `hi` (its hub and
the requesting agency) and network `ca` (its hub and N responding agencies), joined by a
compact signed by a threshold of both boards. Each hub runs in a process of its own, installs
the compact (`FederationService.interstate`: every acceptance rule) and fetches the other
network's roster from the hub the compact names; the responders, spread over `--procs`
worker processes (default: the CPU count) as in `bench.federation_fanout`, learn the compact
and `hi`'s roster from their own hub, and auto-offer on every request through the service
API (`bench.federation_fanout._auto_offer`); the requester runs in the main process.

One round: the requester's coordinator creates a request to `ca/agency-1` .. `ca/agency-N`
(committed); the clock stops when the requester's inbox has applied the N-th offer.
Everything between is real: `v: 2` envelopes sealed to each agency and signed by the
requester, relayed `hi-hub` -> `ca-hub` with per-hop signatures, opened and checked against
the compact and `hi`'s verified roster, the offers' way back the same way, the acks, and the
status reports each side sends its own hub. Round 0 warms up and is not counted.

Key: `interstate_fanout_p95_ms_50` (goal < 1,000), with `interstate_fanout_p50_ms_50` and
`interstate_fanout_machine_ref_ms` (the yardstick of `bench.federation_fanout`).
`--quick`: fewer rounds. `measure(quick)` is what `bench.interstate` calls.
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
from pathlib import Path
from typing import Any

from bench.federation_fanout import (
    PHASES,
    _auto_offer,
    _free_ports,
    _percentile,
    _rounds,
    _run_loop,
    machine_ref_ms,
)
from federation.clock import SystemClock
from federation.server_process import freeze_heap

__all__ = ["LayerMissing", "measure", "measure_interstate_fanout", "run"]

A, B = "hi", "ca"
GOAL_MS = 1_000.0


class LayerMissing(RuntimeError):
    """The running code has no interstate runtime for servers (nothing to measure)."""


def _with_network(settings_cls: Any, values: dict[str, Any], network_id: str) -> dict[str, Any]:
    """`network_id` in a server's settings (the interstate runtime needs it)."""
    if "network_id" not in settings_cls.model_fields:
        raise LayerMissing("the server settings have no network_id: the interstate layer "
                           "is not in this tree")
    return {**values, "network_id": network_id}


def _hub_child(spec: dict[str, Any], conn: Any) -> None:
    """A hub's process: start, adopt its roster and the compact, say ready; on "refresh"
    fetch the other members' rosters; serve until "stop"."""
    logging.disable(logging.WARNING)

    async def main() -> None:
        from federation.compact_acceptance import parse_compact_document
        from federation.keystore import NodeKeys
        from federation.roster import parse_signed_roster
        from hub.config import HubSettings
        from tests.federation.network import HubHandle

        hub = HubHandle(spec["hub_id"], NodeKeys.from_payload(spec["keys"]), spec["port"],
                        spec["db_url"], True, clock=SystemClock())  # type: ignore[arg-type]
        try:
            hub.settings = HubSettings(**spec["settings"])
            await hub.start()
            await hub.fed.roster.accept([parse_signed_roster(spec["roster"])])
            rt = getattr(hub.fed, "interstate", None)
            if rt is None:
                raise RuntimeError("the hub has no interstate runtime")
            await rt.store.accept([parse_compact_document(spec["compact"])], "operator")
        except Exception as exc:  # say why instead of leaving the parent waiting
            conn.send(f"failed: {type(exc).__name__}: {exc}")
            raise
        freeze_heap()
        conn.send("ready")
        loop = asyncio.get_running_loop()
        while (said := await loop.run_in_executor(None, conn.recv)) != "stop":
            if said == "refresh":
                try:
                    await hub.fed.refresh_interstate()
                    conn.send("ok")
                except Exception as exc:  # noqa: BLE001 - reported to the parent
                    conn.send(f"failed: {type(exc).__name__}: {exc}")
        await hub.stop()

    _run_loop(main())


def _node_child(specs: list[dict[str, Any]], conn: Any) -> None:
    """A worker process: these responders start, learn the compact and the foreign roster
    from their hub, auto-offer; serve until told to stop."""
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
                await n.fed.refresh_interstate()
                _auto_offer(n)
                nodes.append(n)
        except Exception as exc:
            conn.send(f"failed: {type(exc).__name__}: {exc}")
            raise
        freeze_heap()
        conn.send("ready")
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
        for n in nodes:
            await n.stop()

    _run_loop(main())


async def fanout_interstate(n: int, rounds: int, tmp: Path, procs: int) -> list[float]:
    """Times (ms) of `rounds` interstate fan-outs to `n` agencies (see module docstring)."""
    import multiprocessing

    from federation.keystore import NodeKeys
    from hub.config import HubSettings
    from node.core.config import NodeSettings
    from protocol.compact import build_signed_compact, compact_signature
    from protocol.encoding import b64u
    from tests.federation.boards import TestBoard, node_entry
    from tests.federation.network import NodeHandle

    clock = SystemClock()
    now = clock.now_ms()
    boards = {A: TestBoard.make(3, 2), B: TestBoard.make(3, 2)}
    hub_ids = {A: f"{A}-hub", B: f"{B}-hub"}
    hub_keys = {A: NodeKeys.generate(), B: NodeKeys.generate()}
    req_id = "agency-req"
    ids = [f"agency-{i}" for i in range(1, n + 1)]
    hub_a_port, hub_b_port, req_port, *node_ports = _free_ports(n + 3)
    hub_url = {A: f"http://127.0.0.1:{hub_a_port}", B: f"http://127.0.0.1:{hub_b_port}"}
    hub_port = {A: hub_a_port, B: hub_b_port}
    keys = {i: NodeKeys.generate() for i in [req_id, *ids]}
    ports = {req_id: req_port, **dict(zip(ids, node_ports, strict=True))}
    members = {A: [req_id], B: ids}

    def hub_entry(net: str) -> Any:
        return node_entry(hub_ids[net], hub_keys[net], hub_url[net], roles=["hub"],
                          disciplines=[], region="state")

    rosters = {
        net: boards[net].sign(boards[net].roster(1, nodes=[hub_entry(net), *(
            node_entry(i, keys[i], f"http://127.0.0.1:{ports[i]}", disciplines=["fire"],
                       region="north") for i in members[net])], now=now))
        for net in (A, B)
    }
    value = {"v": 1, "compact_id": "bench-compact", "version": 1, "prev_sha256": None,
             "issued_ts": now, "expires_ts": now + 30 * 86_400_000,
             "networks": sorted(({
                 "network_id": net, "name": f"Network {net.upper()}",
                 "board": boards[net].board().model_dump(mode="json"),
                 "hub": {"hub_id": hub_ids[net], "endpoint": hub_url[net], "keys": [{
                     "kid": hub_keys[net].key_id, "sign": b64u(hub_keys[net].verify_key_bytes),
                     "enc": b64u(hub_keys[net].enc_public_bytes)}]}} for net in (A, B)),
                 key=lambda m: str(m["network_id"]))}
    unsigned = build_signed_compact(value)
    compact = build_signed_compact(value, {
        net: [compact_signature(k, unsigned.compact_bytes)
              for k in boards[net].keys[:boards[net].threshold]] for net in (A, B)})

    def node_settings(net: str, node_id: str) -> dict[str, Any]:
        (tmp / node_id).mkdir(exist_ok=True)
        return _with_network(NodeSettings, {
            "node_id": node_id, "name": node_id, "data_dir": str(tmp / node_id),
            "db_url": f"sqlite:///{tmp / (node_id + '.db')}",
            "public_url": f"http://127.0.0.1:{ports[node_id]}", "hub_url": hub_url[net],
            "board_keys": boards[net].board().keys, "board_threshold": boards[net].threshold,
            "audit_sign_interval_s": 3600, "notify_poll_s": 3600}, net)

    def hub_spec(net: str) -> dict[str, Any]:
        db = f"sqlite:///{tmp / (hub_ids[net] + '.db')}"
        return {"hub_id": hub_ids[net], "keys": hub_keys[net].to_payload(),
                "port": hub_port[net], "db_url": db, "roster": rosters[net].to_bytes(),
                "compact": compact.to_bytes(),
                "settings": _with_network(HubSettings, {
                    "hub_id": hub_ids[net], "name": hub_ids[net],
                    "data_dir": str(tmp / hub_ids[net]), "db_url": db,
                    "public_url": hub_url[net], "board_keys": boards[net].board().keys,
                    "board_threshold": boards[net].threshold,
                    "operator_token": "bench-operator-token"}, net)}

    mp = multiprocessing.get_context("spawn")
    children: list[tuple[Any, Any]] = []
    loop = asyncio.get_running_loop()
    requester: NodeHandle | None = None

    def spawn(target: Any, *args: Any) -> Any:
        parent, child = mp.Pipe()
        proc = mp.Process(target=target, args=(*args, child), daemon=True)
        proc.start()
        child.close()  # a child that dies makes recv raise instead of hang
        children.append((proc, parent))
        return parent

    async def answer(parent: Any, want: str) -> None:
        said = await loop.run_in_executor(None, parent.recv)
        if said != want:
            raise RuntimeError(f"a bench process did not start: {said}")

    try:
        hubs = [spawn(_hub_child, hub_spec(net)) for net in (A, B)]
        for parent in hubs:
            await answer(parent, "ready")
        for parent in hubs:  # each hub fetches the other's roster (both are up now)
            parent.send("refresh")
            await answer(parent, "ok")
        workers = []
        for k in range(procs):
            mine = ids[k::procs]
            if mine:
                workers.append(spawn(_node_child, [
                    {"node_id": i, "keys": keys[i].to_payload(), "port": ports[i],
                     "db_url": node_settings(B, i)["db_url"], "settings": node_settings(B, i)}
                    for i in mine]))
        s = node_settings(A, req_id)
        requester = NodeHandle(req_id, keys[req_id], ports[req_id], s["db_url"], True,
                               clock=clock)  # type: ignore[arg-type]
        requester.settings = NodeSettings(**s)
        await requester.start()
        await requester.fed.refresh_interstate()
        for parent in workers:
            await answer(parent, "ready")
        freeze_heap()
        try:
            return await _rounds(requester, [f"{B}/{i}" for i in ids], n, rounds)
        finally:
            gc.unfreeze()
    finally:
        for _proc, parent in children:
            with contextlib.suppress(OSError):
                parent.send("stop")
        for proc, _parent in children:
            await loop.run_in_executor(None, proc.join, 30)
        if requester is not None:
            await requester.stop()


def run(n: int, rounds: int, procs: int | None = None) -> dict[str, float]:
    """Run the interstate fan-out to `n` agencies; print a line; the flat figures."""
    logging.disable(logging.WARNING)
    ref_before = machine_ref_ms()
    procs = (os.cpu_count() or 1) if procs is None else max(1, procs)
    with tempfile.TemporaryDirectory(prefix="peernet-interstate-fanout-") as d:
        times = _run_loop(fanout_interstate(n, rounds, Path(d), procs))
    p50, p95 = _percentile(times, 0.5), _percentile(times, 0.95)
    ref = max(ref_before, machine_ref_ms())
    print(f"interstate fan-out: requester in {A} (main process), {A}-hub and {B}-hub in "
          f"processes of their own, {n} {B} agencies in {procs} worker process(es)")
    commit, first = PHASES.get(n, (float("nan"), float("nan")))
    print(f"{'N':>5} {'rounds':>7} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}"
          f" {'commit p50':>11} {'1st offer p50':>14}")
    print(f"{n:>5} {len(times):>7} {p50:>9.1f} {p95:>9.1f} {max(times):>9.1f}"
          f" {commit:>11.1f} {first:>14.1f}", flush=True)
    print(f"machine yardstick (bench.federation_fanout, about 130 at normal speed): {ref:.0f}")
    print(f"goal p95 < {GOAL_MS:,.0f} ms at N = {n}: {'met' if p95 < GOAL_MS else 'NOT met'}")
    return {f"interstate_fanout_p50_ms_{n}": round(p50, 1),
            f"interstate_fanout_p95_ms_{n}": round(p95, 1),
            "interstate_fanout_machine_ref_ms": round(ref, 1)}


def measure_interstate_fanout(quick: bool) -> dict[str, float]:
    """`interstate_fanout_p95_ms_50` (quick: 5 rounds, else 20); nothing (with a note)
    when the interstate layer is not in the running code."""
    try:
        return run(50, 5 if quick else 20)
    except LayerMissing as exc:
        print(f"note: interstate fan-out skipped: {exc}")
        return {}


measure = measure_interstate_fanout  # the name bench.interstate looks for


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.interstate_fanout")
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--procs", type=int, default=None, help="worker processes (responders)")
    ap.add_argument("-n", type=int, default=50, help="agencies asked")
    args = ap.parse_args(argv)
    figures = run(args.n, 5 if args.quick else 20, args.procs)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
