"""`make_network`: a board, a signed roster, a hub and N nodes as real servers, for tests.

Every server is the real application (`hub.app.create_app`, `node.web.app.create_app`) on its own
ephemeral loopback port and its own database (SQLite files, or one fresh PostgreSQL database
per server), all in the test's event loop, sharing one `FakeClock`:

    net = await make_network(3, tmp_path=tmp_path)            # or db="postgres", pg_admin_url=...
    try:
        a, b = net.nodes[0], net.nodes[1]                      # NodeHandle
        a.fed.register_handler(MessageType.ACTIVATION_DECLINE, handler)  # before traffic
        async with a.db.write() as conn:
            msg_id = await a.fed.send(conn, b.node_id, MessageType.ACTIVATION_DECLINE, body)
        await net.settle()                                     # deliver, relay and ack
        await b.stop(); ...; await b.start()                   # same port, same database
        await net.hub.stop(); await net.hub.start()
    finally:
        await net.close()

Or use the `network` fixture factory from `tests/federation/conftest.py`, which closes it:
`net = await network(3)` (`db=` "sqlite" | "postgres").

Conventions:
- node ids are `agency-1` ... `agency-N` (disciplines cycle fire/ems, law_enforcement,
  dispatch_911, corrections; regions north/south), the hub is `hub-state`; the roster (version
  1, board of 3 keys with threshold 2) lists them all; every node pins the board and fetches
  the roster from the hub at start.
- `workers=False` (default) leaves the background outbox/relay workers off so a test decides
  when things move: `await net.settle()` runs every running server's outbox and the relay
  until nothing is due. With `workers=True` they also run by themselves (kicked on commit).
- time only moves with `net.clock.advance(ms)`; backoff is in clock time, so after a failure
  advance the clock before `settle()`.
- `net.publish(roster)` installs a newer signed roster at the hub and every running node.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from federation.clock import FakeClock
from federation.keystore import NodeKeys
from federation.roster import SignedRoster
from federation.service import FederationService
from hub.app import create_app as create_hub_app
from hub.appkeys import DB as HUB_DB
from hub.appkeys import FEDERATION as HUB_FEDERATION
from hub.appkeys import RELAY
from hub.config import HubSettings
from hub.relay.forwarding import Relay
from node.core.appkeys import DB as NODE_DB
from node.core.config import NodeSettings
from node.web.app import create_app as create_node_app
from node.web.federation import FEDERATION as NODE_FEDERATION
from peernet.throwaway_pg import create_database, drop_database
from tests.federation.boards import TestBoard, node_entry

HUB_ID = "hub-state"
OPERATOR_TOKEN = "test-operator-token"
_DISCIPLINES = [["fire", "ems"], ["law_enforcement"], ["dispatch_911"], ["corrections"]]


def _bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass
class _Server:
    """A real aiohttp server on a fixed loopback port that can be stopped and restarted."""

    node_id: str
    keys: NodeKeys
    port: int
    db_url: str
    workers: bool
    app: web.Application | None = None
    runner: web.AppRunner | None = None
    sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.runner is not None

    def _make_app(self) -> web.Application:
        raise NotImplementedError

    @property
    def fed(self) -> FederationService:
        raise NotImplementedError

    async def start(self) -> None:
        self.app = self._make_app()
        self.fed.run_worker = self.workers
        if isinstance(getattr(self, "clock", None), FakeClock):
            # A fake clock never reaches a linger: `settle()` delivers what is due, and
            # reports due in the same pass still travel as one batch message.
            self.fed.batch_linger_ms = 0
        self._before_start()
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        self.sock = self.sock or _bound_socket(self.port)
        await web.SockSite(self.runner, self.sock).start()

    def _before_start(self) -> None:
        pass

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        self.runner = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@dataclass
class HubHandle(_Server):
    settings: HubSettings | None = None
    clock: FakeClock = field(default_factory=FakeClock)

    def _make_app(self) -> web.Application:
        assert self.settings is not None
        return create_hub_app(self.settings, clock=self.clock, keys=self.keys)

    @property
    def fed(self) -> FederationService:
        assert self.app is not None
        return self.app[HUB_FEDERATION]

    @property
    def relay(self) -> Relay:
        assert self.app is not None
        return self.app[RELAY]

    @property
    def db(self) -> Any:
        assert self.app is not None
        return self.app[HUB_DB]


@dataclass
class NodeHandle(_Server):
    settings: NodeSettings | None = None
    clock: FakeClock = field(default_factory=FakeClock)
    handlers: list[tuple[Any, Any]] = field(default_factory=list)

    def _make_app(self) -> web.Application:
        assert self.settings is not None
        return create_node_app(self.settings, clock=self.clock, keys=self.keys)

    def _before_start(self) -> None:
        # Handlers registered with `on()` survive restarts (a new app each start).
        for msg_type, handler in self.handlers:
            self.fed.register_handler(msg_type, handler, replace=True)

    def on(self, msg_type: Any, handler: Any) -> None:
        """Register a handler now (if running) and on every restart."""
        self.handlers.append((msg_type, handler))
        if self.app is not None:
            self.fed.register_handler(msg_type, handler, replace=True)

    @property
    def fed(self) -> FederationService:
        assert self.app is not None
        return self.app[NODE_FEDERATION]

    @property
    def db(self) -> Any:
        assert self.app is not None
        return self.app[NODE_DB]


@dataclass
class Network:
    clock: FakeClock
    board: TestBoard
    roster: SignedRoster
    hub: HubHandle
    nodes: list[NodeHandle]
    _pg: tuple[str, list[str]] | None = None

    def node(self, node_id: str) -> NodeHandle:
        return next(n for n in self.nodes if n.node_id == node_id)

    def servers(self) -> list[_Server]:
        return [self.hub, *self.nodes]

    async def settle(self, max_rounds: int = 30) -> int:
        """Run outboxes and the relay until nothing is due; the number of rows moved."""
        total = 0
        for _ in range(max_rounds):
            moved = 0
            for s in self.servers():
                if s.running:
                    moved += await s.fed.run_once()
                    if isinstance(s, HubHandle):
                        moved += await s.relay.run_once()
            total += moved
            if not moved:
                break
        return total

    async def publish(self, signed: SignedRoster) -> None:
        """Install a newer signed roster at the hub and on every running node."""
        self.roster = signed
        for s in self.servers():
            if s.running:
                await s.fed.roster.accept([signed])

    async def close(self) -> None:
        for s in self.servers():
            await s.stop()
        if self._pg is not None:
            admin, names = self._pg
            for name in names:
                await drop_database(admin, name)


async def make_network(
    n_nodes: int,
    *,
    tmp_path: Path,
    db: str = "sqlite",
    pg_admin_url: str | None = None,
    clock: FakeClock | None = None,
    workers: bool = False,
) -> Network:
    clock = clock or FakeClock()
    board = TestBoard.make(3, 2)
    pg_names: list[str] = []

    async def new_db(name: str) -> str:
        if db == "sqlite":
            return f"sqlite:///{tmp_path / (name + '.db')}"
        assert pg_admin_url is not None, "db='postgres' needs pg_admin_url"
        dbname = "t_" + uuid.uuid4().hex[:16]
        pg_names.append(dbname)
        return await create_database(pg_admin_url, dbname)

    hub_sock = _bound_socket()
    hub_port = hub_sock.getsockname()[1]
    hub_keys = NodeKeys.generate()
    hub = HubHandle(
        HUB_ID, hub_keys, hub_port, await new_db(HUB_ID), workers, sock=hub_sock, clock=clock
    )
    nodes: list[NodeHandle] = []
    for i in range(1, n_nodes + 1):
        sock = _bound_socket()
        node_id = f"agency-{i}"
        nodes.append(
            NodeHandle(
                node_id,
                NodeKeys.generate(),
                sock.getsockname()[1],
                await new_db(node_id),
                workers,
                sock=sock,
                clock=clock,
            )
        )
    entries = [node_entry(HUB_ID, hub_keys, hub.url, roles=["hub"], disciplines=[], region="state")]
    for i, n in enumerate(nodes):
        entries.append(
            node_entry(
                n.node_id,
                n.keys,
                n.url,
                disciplines=_DISCIPLINES[i % len(_DISCIPLINES)],
                region="north" if i % 2 == 0 else "south",
            )
        )
    roster = board.sign(board.roster(1, nodes=entries, now=clock.now_ms()))
    board_keys = board.board().keys
    hub.settings = HubSettings(
        hub_id=HUB_ID,
        name="State hub",
        data_dir=tmp_path / HUB_ID,
        db_url=hub.db_url,
        public_url=hub.url,
        board_keys=board_keys,
        board_threshold=board.threshold,
        operator_token=SecretStr(OPERATOR_TOKEN),
    )
    for n in nodes:
        (tmp_path / n.node_id).mkdir(parents=True, exist_ok=True)
        n.settings = NodeSettings(
            node_id=n.node_id,
            name=n.node_id.replace("-", " ").title(),
            data_dir=tmp_path / n.node_id,
            db_url=n.db_url,
            public_url=n.url,
            hub_url=hub.url,
            board_keys=board_keys,
            board_threshold=board.threshold,
            audit_sign_interval_s=3600,
        )
    net = Network(
        clock, board, roster, hub, nodes, (pg_admin_url, pg_names) if pg_admin_url else None
    )
    try:
        await hub.start()
        await hub.fed.roster.accept([roster])
        for n in nodes:
            await n.start()  # fetches the roster from the hub
    except BaseException:
        await net.close()
        raise
    return net


async def network_factory(
    tmp_path: Path, request: Any
) -> AsyncIterator[Callable[..., Awaitable[Network]]]:
    """Body of the `network` fixture: yields `factory(n_nodes, db="sqlite"|"postgres", **kw)`
    and closes every network made at teardown."""
    made: list[Network] = []

    async def factory(n_nodes: int, db: str = "sqlite", **kw: Any) -> Network:
        pg = request.getfixturevalue("pg_admin_url") if db == "postgres" else None
        sub = tmp_path / f"net{len(made)}"
        sub.mkdir()
        net = await make_network(n_nodes, tmp_path=sub, db=db, pg_admin_url=pg, **kw)
        made.append(net)
        return net

    try:
        yield factory
    finally:
        for net in made:
            await net.close()
