"""Shared-aggregation benchmark: N nodes' shares through a real hub and helper to figures.

    python -m bench.shared_round [--quick] [--nodes N] [--json PATH]

A real hub (`hub.app.create_app`) and a real helper (`helper.app.create_app`), each on its
own loopback port and SQLite database with their background workers running; a signed
roster listing both and N agencies in 4 regions with `aggregation = "shared"`. Each agency
(no server of its own: only its keys) splits a synthetic truncated April workload vector
(`node.privacy.shared.share_bodies`) and PUTs one per-hop signed batch to the hub holding its
two sealed shares: one for the hub, one the hub relays to the helper. Then the operator
starts April's round (`POST /api/v1/rounds/2026-04`) and the benchmark waits until every
region is published (`GET /api/v1/shared-figures`).

Measured from the first share sent to the last region published, so it counts sealing at
the nodes, relaying, both inboxes, the round, the helper's answer and the combination.
Key: `shared_round_s_<N>` (goal for N = 500: under 30 s). `shared_round_s(n)` is what
`bench.privacy` can call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from federation.clock import FakeClock
from federation.keystore import NodeKeys
from federation.roster import Policy
from helper.app import create_app as create_helper_app
from helper.config import HelperSettings
from hub.app import create_app as create_hub_app
from hub.config import HubSettings
from node.privacy.schema import ReleasePolicy
from node.privacy.shared import share_bodies
from protocol.batch import build_batch
from protocol.envelope import Sender, build_envelope
from protocol.ids import new_ulid
from protocol.messages import MessageType, RosterRef
from protocol.request_auth import sign_request
from protocol.workload import WORKLOAD_KEYS

__all__ = ["figures", "shared_round_s"]

MONTH = "2026-04"
REGIONS = ("north", "south", "east", "west")
TOKEN = "bench-operator-token"  # noqa: S105 (a throwaway hub's test token)


def _sock() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(256)
    s.setblocking(False)
    return s


async def _serve(app: web.Application, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


def _vector(rng: random.Random) -> list[int]:
    total = rng.randint(5, 300)
    return [total] + [rng.randint(0, 4) for _ in range(len(WORKLOAD_KEYS) - 1)]


async def _run(n_nodes: int, tmp: Path) -> float:
    # the test board's keys, as bench.federation uses them
    from tests.federation.boards import TestBoard, node_entry

    clock = FakeClock()
    board = TestBoard.make(3, 2)
    hub_keys, helper_keys = NodeKeys.generate(), NodeKeys.generate()
    hub_sock, helper_sock = _sock(), _sock()
    hub_url = f"http://127.0.0.1:{hub_sock.getsockname()[1]}"
    helper_url = f"http://127.0.0.1:{helper_sock.getsockname()[1]}"
    nodes = [(f"agency-{i}", NodeKeys.generate()) for i in range(1, n_nodes + 1)]
    entries = [node_entry("hub-state", hub_keys, hub_url, roles=["hub"], disciplines=[],
                          region="state"),
               node_entry("state-helper", helper_keys, helper_url, roles=["helper"],
                          disciplines=[], region="state")]
    entries += [node_entry(nid, k, "http://127.0.0.1:9", region=REGIONS[i % 4])
                for i, (nid, k) in enumerate(nodes)]
    policy = Policy.model_validate({"privacy": {"aggregation": "shared",
                                                "helper": "state-helper"}})
    roster = board.sign(board.roster(1, nodes=entries, now=clock.now_ms(), policy=policy))
    common: dict[str, Any] = {"board_keys": board.board().keys,
                              "board_threshold": board.threshold,
                              "operator_token": SecretStr(TOKEN)}
    hub = create_hub_app(HubSettings(
        hub_id="hub-state", name="Hub", data_dir=tmp / "hub",
        db_url=f"sqlite:///{tmp / 'hub.db'}", public_url=hub_url, relay_poll_ms=50, **common),
        clock=clock, keys=hub_keys)
    helper = create_helper_app(HelperSettings(
        helper_id="state-helper", name="Helper", data_dir=tmp / "helper",
        db_url=f"sqlite:///{tmp / 'helper.db'}", public_url=helper_url, hub_url=hub_url,
        poll_ms=50, **common), clock=clock, keys=helper_keys)
    from helper.app import FEDERATION as HELPER_FED
    from hub.appkeys import FEDERATION as HUB_FED

    runners = [await _serve(hub, hub_sock)]
    try:
        await hub[HUB_FED].roster.accept([roster])
        runners.append(await _serve(helper, helper_sock))
        await helper[HELPER_FED].roster.accept([roster])
        ref = RosterRef(version=roster.version, sha256=roster.sha256)
        release = ReleasePolicy.from_roster_policy(roster.roster.policy)
        rng = random.Random(15)
        hub_enc, helper_enc = hub_keys.enc_public_bytes, helper_keys.enc_public_bytes
        started = time.perf_counter()
        async with aiohttp.ClientSession() as http:
            sem = asyncio.Semaphore(8)

            async def one(node_id: str, keys: NodeKeys) -> None:
                to_hub, to_helper = share_bodies(_vector(rng), month=MONTH, policy=release)
                sender = Sender(node_id=node_id, key_version=keys.key_version,
                                signing_key=keys.signing_key)
                now = clock.now_ms()
                envs = [build_envelope(sender=sender, to=to, recipient_enc_key=enc,
                                       msg_type=MessageType.AGGREGATE_SHARE, body=b,
                                       msg_id=new_ulid(now, os.urandom(10)), created_ts=now,
                                       expires_ts=now + 86_400_000, roster=ref)
                        for to, enc, b in (("hub-state", hub_enc, to_hub),
                                           ("state-helper", helper_enc, to_helper))]
                raw = build_batch(envs)
                path = "/fed/v1/send/" + new_ulid(now, os.urandom(10))
                auth = sign_request(signing_key=keys.signing_key, key_version=keys.key_version,
                                    method="PUT", path=path, origin=node_id,
                                    destination="hub-state", ts=now, body=raw)
                async with sem, http.put(hub_url + path, data=raw,
                                         headers={"Authorization": auth}) as resp:
                    doc = await resp.json()
                    if resp.status != 200 or any(r["status"] == "refused"
                                                 for r in doc["results"]):
                        raise RuntimeError(f"share refused: {doc}")

            await asyncio.gather(*(one(nid, k) for nid, k in nodes))
            auth = {"Authorization": f"Bearer {TOKEN}"}
            while True:  # every helper share relayed and stored
                async with http.get(f"{helper_url}/api/v1/status", headers=auth) as resp:
                    if (await resp.json())["shares"].get(MONTH) == n_nodes:
                        break
                await asyncio.sleep(0.02)
            async with http.post(f"{hub_url}/api/v1/rounds/{MONTH}", headers=auth) as resp:
                assert resp.status == 200, await resp.text()
            while True:
                async with http.get(f"{hub_url}/api/v1/shared-figures?month_from={MONTH}"
                                    f"&month_to={MONTH}", headers=auth) as resp:
                    figs = (await resp.json())["figures"]
                if len(figs) == len(REGIONS):
                    break
                await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        assert sum(f["nodes"] for f in figs) == n_nodes
        return elapsed
    finally:
        for r in reversed(runners):
            await r.cleanup()


def shared_round_s(n_nodes: int = 500) -> float:
    """Seconds for `n_nodes` nodes' shares to reach published figures (see module doc)."""
    with tempfile.TemporaryDirectory(prefix="peernet-shared-") as tmp:
        return asyncio.run(_run(n_nodes, Path(tmp)))


def figures(quick: bool = False) -> dict[str, float]:
    """The issue's figure for `bench.privacy`: 500 nodes even with `quick` (about 6 s)."""
    del quick
    return {"shared_round_s_500": round(shared_round_s(500), 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="50 nodes instead of 500")
    p.add_argument("--nodes", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    n = args.nodes or (50 if args.quick else 500)
    secs = shared_round_s(n)
    key = f"shared_round_s_{n}"
    print(f"{'metric':<24} {'value':>10}\n{key:<24} {secs:>10.2f}")
    if args.json:
        args.json.write_text(json.dumps({key: round(secs, 3)}, indent=1) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
