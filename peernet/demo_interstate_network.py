"""Two state networks and the compact between them, for `peernet demo --interstate`.

Each state is built as `peernet.demo_network.build_network` builds the one-state demo (its
own board with keys sealed at rest, 2 of 3; its own hub and agency nodes on loopback, each
with its own SQLite database, key file and config; a roster its board signs), with two
differences a compact needs: the hub is named for its network (`hi-hub`, `ca-hub`: the
compact lists each member's hub, and two members cannot share a hub id) and a state has
three agencies, not five.

Then the compact, as the boards would draw it up with `peernet board compact ...`
(`federation.board_compact.CompactDir`): a draft of version 1, each network listed from its
board's `board.json` and its hub's public info, a threshold of *each* board signs, `combine`
checks every board's threshold before it writes the signed compact, and each state checks
it once more against its own pinned board (`verify_compact_file`). Each hub installs it
(`install_compact`: its `CompactStore`, every acceptance rule) and fetches the other
network's roster from the hub the compact names, verified against the board keys the
compact lists (`federation.interstate_fetch.fetch_foreign_roster`).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from federation.board import BoardDir, load_board_key, read_pin, verify_roster_file
from federation.board_compact import CompactDir, member_from, read_board_file, verify_compact_file
from federation.compact_acceptance import CompactPin
from federation.compact_state import CompactState
from federation.compact_store import CompactStore
from federation.foreign_rosters import ForeignRosters
from federation.interstate_fetch import fetch_foreign_roster
from federation.keystore import NodeKeys
from federation.node_info import parse_node_info
from federation.passwords import MIN, PasswordHasher
from hub.app import create_app as create_hub_app
from hub.appkeys import DB as HUB_DB
from hub.appkeys import FEDERATION as HUB_FEDERATION
from hub.config import HubSettings
from node.core.config import NodeSettings
from node.web.app import create_app as create_node_app
from peernet.demo_network import (
    BOARD_KEYS,
    BOARD_THRESHOLD,
    DEMO_PASSPHRASE,
    OPERATOR_TOKEN,
    AgencySpec,
    DemoClock,
    DemoNetwork,
    Server,
    _bound_socket,
    _seal_keys,
    _write_json,
)
from protocol.compact import SignedCompact

__all__ = [
    "COMPACT_ID",
    "STATES",
    "StateNet",
    "StateSpec",
    "build_compact",
    "fetch_rosters",
    "prepare_state",
    "settle_all",
    "start_hub",
    "start_nodes",
]

COMPACT_ID = "pacific-peer-support-compact"
# Where a hub without an interstate runtime keeps the demo's compact state (see `_stores`).
_COMPACT: web.AppKey[CompactState] = web.AppKey("peernet_demo_compact", CompactState)


@dataclass(frozen=True)
class StateSpec:
    network_id: str
    name: str
    agencies: tuple[AgencySpec, ...]

    @property
    def hub_id(self) -> str:
        return f"{self.network_id}-hub"


# Network A (the requester, after a wildfire on Maui) and network B (the responders).
STATES = (
    StateSpec("hi", "Hawaii", (
        AgencySpec("maui-fire", "Maui County Fire Department", "fire", "maui"),
        AgencySpec("maui-ems", "Maui Emergency Medical Services", "ems", "maui"),
        AgencySpec("maui-pd", "Maui Police Department", "law_enforcement", "maui"),
    )),
    StateSpec("ca", "California", (
        AgencySpec("la-fire", "Los Angeles County Fire Department", "fire", "south"),
        AgencySpec("sac-ems", "Sacramento Regional EMS", "ems", "north"),
        AgencySpec("sd-911", "San Diego Regional 911", "dispatch_911", "south"),
    )),
)


@dataclass
class StateNet:
    """One state of the demo: its spec, its running network, its interstate stores."""

    spec: StateSpec
    net: DemoNetwork
    compact: CompactStore | None = None
    foreign: ForeignRosters | None = None

    @property
    def network_id(self) -> str:
        return self.spec.network_id

    @property
    def hub_id(self) -> str:
        return self.spec.hub_id

    @property
    def board_pin(self) -> CompactPin:
        pin = read_pin(self.net.board.board_file)
        return CompactPin(self.network_id, pin)


def _network(settings: Any, network_id: str) -> dict[str, Any]:
    """`network_id` for a server's settings when its config has the field (interstate)."""
    return {"network_id": network_id} if "network_id" in settings.model_fields else {}


async def prepare_state(
    root: Path, spec: StateSpec, clock: DemoClock, policy: dict[str, Any] | None = None,
) -> StateNet:
    """A state's board, keys, node info and signed roster, sockets bound, nothing started."""
    t0 = time.monotonic()
    now = clock.now_ms()
    board = BoardDir(root / "board")
    board.init(keys=BOARD_KEYS, threshold=BOARD_THRESHOLD, passphrase=DEMO_PASSPHRASE,
               now_ms=now, validity_days=90)
    hub = Server(spec.hub_id, f"{spec.name} peer support hub", "hub", root / spec.hub_id,
                 NodeKeys.generate(), _bound_socket())
    nodes = [Server(a.node_id, a.name, "node", root / a.node_id, NodeKeys.generate(),
                    _bound_socket(), discipline=a.discipline, region=a.region)
             for a in spec.agencies]
    await asyncio.gather(*(asyncio.to_thread(_seal_keys, s) for s in [hub, *nodes]))
    for s in [hub, *nodes]:
        info = s.directory / f"{s.kind}-info.json"
        _write_json(info, s.info_document())
        board.add_node(parse_node_info(info.read_bytes()), now)
    for field_path, value in (policy or {}).items():
        board.set_policy(field_path, value, now)
    sigs = []
    for i in range(1, BOARD_THRESHOLD + 1):
        key = load_board_key(board.root / "keys" / f"board-key-{i}.json", DEMO_PASSPHRASE)
        path = board.root / f"signature-{i}.json"
        _write_json(path, board.sign(key, now))
        sigs.append(json.loads(path.read_text(encoding="utf-8")))
    signed = board.combine(sigs, now)
    verify_roster_file(board.roster_file(signed.version), now, pin=read_pin(board.board_file))
    state = StateNet(spec, DemoNetwork(root, clock, board, signed, hub, nodes))
    state.net.timings["network_s"] = time.monotonic() - t0
    return state


def _pin(st: StateNet) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(st.net.board.board_file.read_text(encoding="utf-8"))
    return value


async def start_hub(st: StateNet, signed_compact: SignedCompact) -> None:
    """The state's hub, started with its roster and the compact installed (as its operator
    would: `install-roster`, then the compact through every acceptance rule)."""
    t0 = time.monotonic()
    hub, net, pin = st.net.hub, st.net, _pin(st)
    hub.settings = HubSettings(
        hub_id=st.hub_id, name=hub.name, region="state", data_dir=hub.directory,
        db_url=f"sqlite:///{hub.directory / 'hub.db'}", public_url=hub.url, port=hub.port,
        board_keys=pin["keys"], board_threshold=pin["threshold"],
        operator_token=SecretStr(OPERATOR_TOKEN), relay_poll_ms=200,
        **_network(HubSettings, st.network_id),
    )
    (hub.directory / "hub.toml").write_text(hub.settings.to_toml(), encoding="utf-8")
    app = create_hub_app(hub.settings, clock=net.clock, keys=hub.keys)
    st.compact, st.foreign = _stores(st, app)
    await hub.start(app)
    roster_file = net.board.roster_file(net.roster.version)
    await hub.fed.roster.accept_document(roster_file.read_bytes(), source="operator")
    if getattr(hub.fed, "interstate", None) is None:
        await st.compact.accept([signed_compact], source="operator")
    else:  # the operator's route (`POST /api/v1/compact`), as `curl` would do it
        headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(f"{hub.url}/api/v1/compact",
                                 data=signed_compact.to_bytes()) as r:
                if r.status != 200:
                    raise RuntimeError(f"{st.hub_id} refused the compact: {await r.text()}")
    net.timings["network_s"] += time.monotonic() - t0


async def start_nodes(st: StateNet) -> None:
    """The state's agencies, each pinned to its board, fetching the roster (and, when the
    running code gives nodes an interstate runtime, the compact and the other networks'
    rosters, verified again on the node) from its hub."""
    t0 = time.monotonic()
    net, pin = st.net, _pin(st)
    hasher = PasswordHasher(MIN)  # demo logins: the cheapest argon2id cost, loopback only
    for n in net.nodes:
        assert n.discipline is not None
        n.settings = NodeSettings(
            node_id=n.node_id, name=n.name, disciplines=[n.discipline], region=n.region,
            data_dir=n.directory, db_url=f"sqlite:///{n.directory / 'node.db'}",
            public_url=n.url, port=n.port, hub_url=net.hub.url,
            board_keys=pin["keys"], board_threshold=pin["threshold"],
            audit_sign_interval_s=5, **_network(NodeSettings, st.network_id),
        )
        (n.directory / "node.toml").write_text(n.settings.to_toml(), encoding="utf-8")
        await n.start(create_node_app(n.settings, clock=net.clock, keys=n.keys,
                                      pseudonyms=n.pseudonyms, hasher=hasher))
        if n.fed.state.version != net.roster.version:
            raise RuntimeError(f"{st.network_id}/{n.node_id} did not get the roster")
        if getattr(n.fed, "interstate", None) is not None:
            await n.fed.refresh_interstate()
    net.timings["network_s"] += time.monotonic() - t0


def build_compact(root: Path, states: list[StateNet], now_ms: int) -> SignedCompact:
    """The compact, drawn up and signed by a threshold of every member board, then checked
    by each member against its own pinned board (see module docstring)."""
    cdir = CompactDir(root)
    cdir.init(COMPACT_ID, now_ms, 365)
    for st in states:
        hub_info = parse_node_info((st.net.hub.directory / "hub-info.json").read_bytes())
        member = member_from(st.network_id, st.spec.name,
                             read_board_file(st.net.board.board_file), hub_info, None)
        cdir.add_network(member, now_ms, replace=False)
    sigs = []
    for st in states:  # each board's members sign with their own sealed keys
        for i in range(1, BOARD_THRESHOLD + 1):
            key = load_board_key(st.net.board.root / "keys" / f"board-key-{i}.json",
                                 DEMO_PASSPHRASE)
            doc = cdir.sign(st.network_id, key, now_ms)
            _write_json(root / f"signature-{st.network_id}-{i}.json", doc)
            sigs.append(doc)
    signed = cdir.combine(sigs, now_ms)
    for st in states:
        verify_compact_file(cdir.compact_file(signed.version), now_ms, pin=st.board_pin)
    return signed


def _interstate(server: Server) -> Any:
    """The server's interstate runtime (`FederationService.interstate`: its compact store
    and foreign rosters) when the running code has one and the server knows its network."""
    return getattr(server.fed, "interstate", None)


def _stores(st: StateNet, app: web.Application) -> tuple[CompactStore, ForeignRosters]:
    """The hub's compact store and foreign rosters (before the hub starts): its interstate
    runtime's, else stores over the hub's own tables (`fed_compact`, `fed_foreign_roster`)
    with the compact's state put in the application, where the national room finds it."""
    fed = app[HUB_FEDERATION]
    rt = getattr(fed, "interstate", None)
    if rt is not None:
        return rt.store, rt.foreign
    store = CompactStore(fed.engine, st.net.clock, st.board_pin, write=app[HUB_DB].write)
    app[_COMPACT] = store.state
    foreign = ForeignRosters(fed.engine, st.net.clock, store.state, write=app[HUB_DB].write)
    return store, foreign


async def settle_all(states: list[StateNet], timeout_s: float = 20.0) -> int:
    """Wait until every message of every state is acked end to end (or the timeout); the
    count left. All states at once: a message acked across the line often makes the
    receiver queue another (a report to its own hub) after the sender's side settled."""
    deadline = time.monotonic() + timeout_s
    while True:
        for st in states:
            for s in st.net.servers():
                s.fed.kick()
        left = failed = 0
        for st in states:
            left += await st.net.undelivered()
            failed += await st.net.failed()
        if left == 0 or time.monotonic() > deadline or left == failed:
            return left
        await asyncio.sleep(0.05)


async def fetch_rosters(st: StateNet, others: list[StateNet]) -> dict[str, int]:
    """The other members' rosters, fetched by the hub from the hubs the compact names and
    verified against their boards in the compact; the versions the hub holds."""
    assert st.foreign is not None
    foreign = st.foreign
    if getattr(st.net.hub.fed, "interstate", None) is not None:
        # The hub fetches them itself once a compact is installed (in the background);
        # wait for that, then ask it once more for any still missing.
        for _ in range(100):  # up to 5 s
            if all(foreign.version(o.network_id) for o in others):
                break
            await asyncio.sleep(0.05)
        if not all(foreign.version(o.network_id) for o in others):
            await st.net.hub.fed.refresh_interstate()
    else:
        async with aiohttp.ClientSession() as http:
            for o in others:
                await fetch_foreign_roster(http, foreign, o.network_id)
    return {o.network_id: foreign.version(o.network_id) for o in others}
