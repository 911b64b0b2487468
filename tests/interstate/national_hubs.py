"""Test harness for national figures: several state hubs in-process on ephemeral ports, each
with its own board, roster, hub key, database and signed releases (no nodes are needed:
releases are signed with the roster's node keys and stored through the hub's own ingest).

hubs = await start_states(["tx", "hi"], tmp_path, db_urls, clock)
hubs["tx"].url, hubs["tx"].app, hubs["tx"].analyst_token, hubs["tx"].operator_token
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from federation.clock import FakeClock
from federation.keystore import NodeKeys
from hub.app import create_app
from hub.appkeys import DB, FEDERATION
from hub.config import HubSettings
from hub.national.feature import PEER_NETWORKS
from hub.national.peers import Peer, StaticPeerNetworks
from hub.stats.aggregates import accept_release
from hub.users import accounts as users
from node.privacy.release import build_release
from node.privacy.schema import ReleasePolicy
from tests.federation.boards import TestBoard, node_entry
from tests.privacy.synthetic import synthetic_columns

MONTHS = [f"{2025 + (i + 4) // 12}-{(i + 4) % 12 + 1:02d}" for i in range(12)]  # 2025-05..
OPERATOR_TOKEN = "national-operator-token"


@dataclass
class StateHub:
    network_id: str
    hub_id: str
    keys: NodeKeys
    app: web.Application
    runner: web.AppRunner
    url: str
    node_keys: dict[str, NodeKeys]
    peers: StaticPeerNetworks
    analyst_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_peer(self) -> Peer:
        return Peer(self.network_id, self.hub_id, self.url,
                    {self.keys.key_id: self.keys.verify_key_bytes})

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_state(network_id: str, tmp_path: Path, db_url: str, clock: FakeClock,
                      n_nodes: int = 2, static_peers: bool = True) -> StateHub:
    """A started hub; with `static_peers` its peers are `StateHub.peers` (set by `link`),
    otherwise the app keeps its default (`hub.national.feature.CompactPeers`)."""
    board = TestBoard.make(3, 2)
    hub_id = f"hub-{network_id}"
    hub_keys = NodeKeys.generate()
    node_keys = {f"{network_id}-agency-{i}": NodeKeys.generate() for i in range(1, n_nodes + 1)}
    entries = [node_entry(hub_id, hub_keys, "http://127.0.0.1:9", roles=["hub"],
                          disciplines=[], region="state")]
    entries += [node_entry(n, k, "http://127.0.0.1:9", region="north")
                for n, k in node_keys.items()]
    roster = board.sign(board.roster(1, nodes=entries, now=clock.now_ms()))
    settings = HubSettings(hub_id=hub_id, name=f"{network_id.upper()} hub",
                           data_dir=tmp_path / hub_id, db_url=db_url,
                           board_keys=board.board().keys, board_threshold=board.threshold,
                           operator_token=SecretStr(OPERATOR_TOKEN))
    app = create_app(settings, clock=clock, keys=hub_keys)
    peers = StaticPeerNetworks(network_id)
    if static_peers:
        app[PEER_NETWORKS] = peers
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    hub = StateHub(network_id, hub_id, hub_keys, app, runner, f"http://127.0.0.1:{port}",
                   node_keys, peers)
    await app[FEDERATION].roster.accept([roster])
    return hub


async def seed_releases(hub: StateHub, months: Sequence[str], *, seed: int = 0,
                        skip: Callable[[str, str], bool] = lambda node, month: False) -> None:
    app = hub.app
    state = app[FEDERATION].roster.state
    policy = ReleasePolicy.from_roster_policy(state.policy)
    now = app[FEDERATION].clock.now_ms()
    for k, (node_id, keys) in enumerate(hub.node_keys.items()):
        for i, month in enumerate(months):
            if skip(node_id, month):
                continue
            signed = build_release(
                synthetic_columns(120 + 30 * k + 7 * i, 50, seed=seed + 100 * k + i),
                node_id=node_id, month=month, policy=policy, signing_key=keys.signing_key,
                key_version=keys.key_version, now_ms=now)
            async with app[DB].write() as conn:
                await accept_release(conn, signed.body, sender=node_id, keys=state,
                                     region=state.node(node_id).region, now_ms=now)


async def add_analyst(hub: StateHub, now_ms: int) -> str:
    app = hub.app
    await users.create_user(app[DB], app[users.HASHER], username="analyst",
                            password="a long calm passphrase", role="board_analyst",
                            now_ms=now_ms)
    hub.analyst_token = await users.create_token(app[DB], username="analyst", label="t",
                                                 now_ms=now_ms)
    return hub.analyst_token


def link(hubs: Sequence[StateHub]) -> None:
    """Every hub lists every hub (itself included) as the compact would."""
    members = [h.as_peer() for h in hubs]
    for h in hubs:
        h.peers.peers = list(members)
