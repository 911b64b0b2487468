"""The demo network: a state board, a state hub and agency nodes on loopback, in one loop.

Everything is the real thing, wired the way an operator would wire it, only in-process:

- the board is a `federation.board.BoardDir` (keys sealed at rest, a draft roster); each
  server hands it a node-info document (`federation.node_info.node_info_document`), the board
  adds it to the draft, a threshold of key holders sign it, `combine` checks the signatures
  against the acceptance rules and writes the signed roster, and `verify_roster_file`
  checks it once more against the pinned board, as `peernet roster verify` does;
- every server has its own data directory, SQLite database, key file (sealed under the
  demo passphrase) and TOML config (so `peernet node serve --config ...` works on it too);
- the hub and the nodes are their servers' `create_app` applications served by
  `web.AppRunner` + `web.SockSite` on sockets bound to free loopback ports before the
  roster is drawn up (the roster names each endpoint, so the port must be known and held);
- the hub installs the signed roster as `peernet hub install-roster` does; every node pins
  the board and fetches the roster from the hub when it starts.

All servers share one `DemoClock`: wall-clock time plus an offset the incident script moves
forward (an activation that runs for hours plays in seconds). Every server reads the same
clock, so request signatures, freshness windows and expiry agree everywhere.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from federation.board import BoardDir, load_board_key, read_pin, verify_roster_file
from federation.keystore import NodeKeys
from federation.node_info import node_info_document, parse_node_info
from federation.passwords import MIN, PasswordHasher
from federation.roster import SignedRoster
from federation.service import FederationService
from federation.store import OutboxState
from helper.app import FEDERATION as HELPER_FEDERATION
from helper.app import create_app as create_helper_app
from helper.config import HelperSettings
from hub.app import create_app as create_hub_app
from hub.appkeys import FEDERATION as HUB_FEDERATION
from hub.appkeys import RELAY
from hub.config import HubSettings
from node.core.config import NodeSettings
from node.core.pseudonym import Pseudonymizer, create_key_file
from node.web.app import create_app as create_node_app
from node.web.federation import FEDERATION as NODE_FEDERATION

__all__ = [
    "BOARD_KEYS",
    "BOARD_THRESHOLD",
    "DEMO_PASSPHRASE",
    "HELPER_ID",
    "HUB_ID",
    "OPERATOR_TOKEN",
    "AgencySpec",
    "DemoClock",
    "DemoNetwork",
    "Server",
    "agency_specs",
    "build_network",
]

HUB_ID = "state-hub"
HELPER_ID = "state-helper"  # the helper aggregator, with --aggregation shared
DEMO_PASSPHRASE = "demo passphrase, not for production"  # noqa: S105 (loopback demo)
OPERATOR_TOKEN = "demo-operator-token"  # noqa: S105 (loopback demo)
BOARD_KEYS = 3
BOARD_THRESHOLD = 2


class DemoClock:
    """Wall-clock milliseconds plus an offset that only moves forward (`advance`)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("the demo clock only moves forward")
        self.offset_ms += ms


@dataclass(frozen=True)
class AgencySpec:
    node_id: str
    name: str
    discipline: str
    region: str


# The five disciplines, in two regions; extra nodes (--nodes > 5) repeat the cycle.
_BASE = [
    ("metro-fire", "Metro Fire Department", "fire", "north"),
    ("county-ems", "County EMS", "ems", "north"),
    ("metro-911", "Metro 911 Communications", "dispatch_911", "north"),
    ("river-pd", "River City Police Department", "law_enforcement", "south"),
    ("state-doc", "State Corrections, South Facility", "corrections", "south"),
]
_EXTRA_NAMES = {
    "fire": "Fire District",
    "ems": "Ambulance Service",
    "dispatch_911": "Regional 911",
    "law_enforcement": "Sheriff's Office",
    "corrections": "County Jail",
}


def agency_specs(n: int) -> list[AgencySpec]:
    """`n` agencies (at least 5): one per discipline first, then the cycle again."""
    if n < len(_BASE):
        raise ValueError(f"the demo needs at least {len(_BASE)} agency nodes")
    out = [AgencySpec(*b) for b in _BASE]
    for i in range(len(_BASE), n):
        _, _, disc, _ = _BASE[i % len(_BASE)]
        k = i // len(_BASE) + 1
        region = "north" if i % 2 == 0 else "south"
        out.append(
            AgencySpec(f"{disc.replace('_', '-')}-{k}", f"{_EXTRA_NAMES[disc]} {k}", disc, region)
        )
    return out


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass(eq=False)
class Server:
    """One server of the demo: its identity, directory, socket and (once started) app."""

    node_id: str
    name: str
    kind: str  # "hub", "node" or "helper"
    directory: Path
    keys: NodeKeys
    sock: socket.socket
    discipline: str | None = None
    region: str = "state"
    pseudonyms: Pseudonymizer | None = None
    settings: Any = None
    app: web.Application | None = None
    runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def fed(self) -> FederationService:
        assert self.app is not None
        if self.kind == "helper":
            return self.app[HELPER_FEDERATION]
        return self.app[HUB_FEDERATION if self.kind == "hub" else NODE_FEDERATION]

    def info_document(self) -> dict[str, Any]:
        return node_info_document(
            node_id=self.node_id,
            name=self.name,
            disciplines=[self.discipline] if self.discipline else [],
            region=self.region,
            endpoint=self.url,
            key_id=self.keys.key_id,
            verify_key=self.keys.verify_key_bytes,
            enc_public_key=self.keys.enc_public_bytes,
            roles=["agency"] if self.kind == "node" else [self.kind],
        )

    async def start(self, app: web.Application) -> None:
        self.app = app
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        self.sock.close()


@dataclass
class DemoNetwork:
    root: Path
    clock: DemoClock
    board: BoardDir
    roster: SignedRoster
    hub: Server
    nodes: list[Server]
    timings: dict[str, float] = field(default_factory=dict)
    helper: Server | None = None

    def node(self, node_id: str) -> Server:
        return next(n for n in self.nodes if n.node_id == node_id)

    def by_discipline(self, discipline: str) -> Server:
        return next(n for n in self.nodes if n.discipline == discipline)

    def servers(self) -> list[Server]:
        return [self.hub, *([self.helper] if self.helper else []), *self.nodes]

    async def undelivered(self) -> int:
        """Outbox rows without their end-to-end ack (pending or failed) plus relay rows."""
        total = 0
        for s in self.servers():
            counts = await s.fed.outbox_counts()
            total += sum(v for k, v in counts.items() if k != OutboxState.DONE)
        assert self.hub.app is not None
        total += sum((await self.hub.app[RELAY].queue_counts()).values())
        return total

    async def failed(self) -> int:
        total = 0
        for s in self.servers():
            total += (await s.fed.outbox_counts()).get(OutboxState.FAILED, 0)
        return total

    async def settle(self, timeout_s: float = 20.0) -> int:
        """Wait until every message is acked end to end (or the timeout); the count left."""
        deadline = time.monotonic() + timeout_s
        while True:
            for s in self.servers():
                s.fed.kick()
            left = await self.undelivered()
            if left == 0 or time.monotonic() > deadline or left == await self.failed():
                return left
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for s in reversed(self.servers()):
            await s.stop()


def _seal_keys(s: Server) -> None:
    """The server's key files, sealed under the demo passphrase (argon2id: run in a thread)."""
    s.directory.mkdir(parents=True, exist_ok=True)
    s.keys.save(s.directory / f"{s.kind}.key", DEMO_PASSPHRASE)
    if s.kind == "node":
        s.pseudonyms = create_key_file(s.directory / "pseudonym.key", DEMO_PASSPHRASE)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n", encoding="utf-8")


async def build_network(
    root: Path, specs: list[AgencySpec], clock: DemoClock, progress: Any,
    policy: dict[str, Any] | None = None, helper: bool = False,
) -> DemoNetwork:
    """Board, roster, hub and nodes, started; see the module docstring. `policy` maps
    dotted policy fields to values the board sets in the draft (`board policy set`).
    `helper`: also a helper aggregator (`peernet helper`), named in the policy with
    `privacy.aggregation = "shared"` (DESIGN 7.1 item 2)."""
    t0 = time.monotonic()
    now = clock.now_ms()
    board = BoardDir(root / "board")
    board.init(keys=BOARD_KEYS, threshold=BOARD_THRESHOLD, passphrase=DEMO_PASSPHRASE,
               now_ms=now, validity_days=90)
    progress(f"state board: {BOARD_KEYS} keys sealed at rest, threshold {BOARD_THRESHOLD}")

    hub = Server(HUB_ID, "State peer support hub", "hub", root / HUB_ID, NodeKeys.generate(),
                 _bound_socket())
    nodes = [
        Server(s.node_id, s.name, "node", root / s.node_id, NodeKeys.generate(),
               _bound_socket(), discipline=s.discipline, region=s.region)
        for s in specs
    ]
    extra = ([Server(HELPER_ID, "State statistics helper (run by the university)", "helper",
                     root / HELPER_ID, NodeKeys.generate(), _bound_socket())]
             if helper else [])
    await asyncio.gather(*(asyncio.to_thread(_seal_keys, s) for s in [hub, *extra, *nodes]))
    for s in [hub, *extra, *nodes]:
        info = s.directory / f"{s.kind}-info.json"
        _write_json(info, s.info_document())
        board.add_node(parse_node_info(info.read_bytes()), now)
    for field_path, value in (policy or {}).items():
        board.set_policy(field_path, value, now)
    if helper:  # both fields at once: a helper is named exactly when aggregation is shared
        privacy = {**board.draft(now).policy.privacy.model_dump(mode="json"),
                   "aggregation": "shared", "helper": HELPER_ID}
        board.set_policy("privacy", privacy, now)
    progress(f"keys and node info for {len(nodes)} agencies and the hub"
             + (" and the helper" if extra else "") + "; board draft has "
             f"{len(nodes) + 1 + len(extra)} members"
             + "".join(f", {k} = {v}" for k, v in (policy or {}).items()))

    # A threshold of key holders sign the draft, each with their own key file.
    sig_files = []
    for i in range(1, BOARD_THRESHOLD + 1):
        key = load_board_key(board.root / "keys" / f"board-key-{i}.json", DEMO_PASSPHRASE)
        path = board.root / f"signature-{i}.json"
        _write_json(path, board.sign(key, now))
        sig_files.append(json.loads(path.read_text(encoding="utf-8")))
    signed = board.combine(sig_files, now)
    roster_file = board.roster_file(signed.version)
    verify_roster_file(roster_file, now, pin=read_pin(board.board_file))
    progress(f"roster v{signed.version} signed by {BOARD_THRESHOLD} of {BOARD_KEYS} board "
             f"keys, verified against the pinned board (sha256 {signed.sha256[:12]}...)")

    pin = json.loads(board.board_file.read_text(encoding="utf-8"))
    hub.settings = HubSettings(
        hub_id=HUB_ID, name=hub.name, region="state", data_dir=hub.directory,
        db_url=f"sqlite:///{hub.directory / 'hub.db'}", public_url=hub.url, port=hub.port,
        board_keys=pin["keys"],
        board_threshold=pin["threshold"], operator_token=SecretStr(OPERATOR_TOKEN),
        relay_poll_ms=200,
    )
    (hub.directory / "hub.toml").write_text(hub.settings.to_toml(), encoding="utf-8")
    await hub.start(create_hub_app(hub.settings, clock=clock, keys=hub.keys))
    await hub.fed.roster.accept_document(roster_file.read_bytes(), source="operator")
    progress(f"hub {HUB_ID} serving on {hub.url}, roster v{signed.version} installed")
    for h in extra:
        h.settings = HelperSettings(
            helper_id=h.node_id, name=h.name, data_dir=h.directory,
            db_url=f"sqlite:///{h.directory / 'helper.db'}", public_url=h.url, port=h.port,
            hub_url=hub.url, board_keys=pin["keys"], board_threshold=pin["threshold"],
            poll_ms=200,
        )
        (h.directory / "helper.toml").write_text(h.settings.to_toml(), encoding="utf-8")
        await h.start(create_helper_app(h.settings, clock=clock, keys=h.keys))
        await h.fed.roster.accept_document(roster_file.read_bytes(), source="operator")
        progress(f"helper aggregator {h.node_id} serving on {h.url}: shared aggregation")

    hasher = PasswordHasher(MIN)  # demo logins: the cheapest argon2id cost, loopback only
    for n in nodes:
        n.settings = NodeSettings(
            node_id=n.node_id, name=n.name, disciplines=[n.discipline], region=n.region,
            data_dir=n.directory, db_url=f"sqlite:///{n.directory / 'node.db'}",
            public_url=n.url, port=n.port, hub_url=hub.url,
            board_keys=pin["keys"], board_threshold=pin["threshold"],
            audit_sign_interval_s=5,
        )
        (n.directory / "node.toml").write_text(n.settings.to_toml(), encoding="utf-8")
        await n.start(create_node_app(n.settings, clock=clock, keys=n.keys,
                                      pseudonyms=n.pseudonyms, hasher=hasher))
        if n.fed.state.version != signed.version:
            raise RuntimeError(f"{n.node_id} did not get the roster from the hub")
    progress(f"{len(nodes)} agency nodes serving, each pinned to the board and holding "
             f"roster v{signed.version} fetched from the hub")
    net = DemoNetwork(root, clock, board, signed, hub, nodes,
                      helper=extra[0] if extra else None)
    net.timings["network_s"] = time.monotonic() - t0
    return net
