"""Two member networks as real servers, for the interstate relay tests (and whoever builds on
them): per network a board, a signed roster, a hub and agencies, each server the real
application on its own loopback port and database (SQLite files or fresh PostgreSQL
databases), one `FakeClock`, and a compact (version 1, both networks) signed by both boards
installed at both hubs; every hub and node has then fetched what it needs.

    pair = await make_pair(tmp_path, db="sqlite")                  # or "postgres", pg_admin_url
    a, b = pair.node("tx", "agency-a"), pair.node("hi", "agency-b")
    async with a.db.write() as conn:
        await a.fed.send(conn, "hi/agency-b", TEST_TYPE, TEST_BODY)
    await pair.settle()                                             # outboxes and relays
    await pair.close()

Networks: `tx` (hub `hub-tx`, agencies `agency-a`, `agency-c`) and `hi` (hub `hub-hi`,
agency `agency-b`). `workers=False`: nothing moves until `settle()`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey
from pydantic import SecretStr

from federation.clock import FakeClock
from federation.keystore import NodeKeys
from federation.roster import SignedRoster
from hub.config import HubSettings
from node.core.config import NodeSettings
from peernet.throwaway_pg import create_database, drop_database
from protocol.compact import SignedCompact, build_signed_compact, compact_signature
from protocol.encoding import b64u
from tests.federation.boards import DAY, TestBoard, node_entry
from tests.federation.network import HubHandle, NodeHandle, _bound_socket, _Server

__all__ = ["OPERATOR_TOKEN", "Pair", "StateNet", "make_pair"]

OPERATOR_TOKEN = "test-operator-token"
AGENCIES = {"tx": ("agency-a", "agency-c"), "hi": ("agency-b",)}


@dataclass
class StateNet:
    network_id: str
    board: TestBoard
    hub: HubHandle
    nodes: list[NodeHandle]
    roster: SignedRoster | None = None

    def member(self) -> dict[str, Any]:
        k = self.hub.keys
        return {
            "network_id": self.network_id, "name": f"Network {self.network_id.upper()}",
            "board": self.board.board().model_dump(mode="json"),
            "hub": {"hub_id": self.hub.node_id, "endpoint": self.hub.url,
                    "keys": [{"kid": k.key_id, "sign": b64u(k.verify_key_bytes),
                              "enc": b64u(k.enc_public_bytes)}]},
        }


@dataclass
class Pair:
    clock: FakeClock
    nets: dict[str, StateNet]
    compacts: list[SignedCompact] = field(default_factory=list)
    _pg: tuple[str, list[str]] | None = None

    def node(self, network_id: str, node_id: str) -> NodeHandle:
        return next(n for n in self.nets[network_id].nodes if n.node_id == node_id)

    def hub(self, network_id: str) -> HubHandle:
        return self.nets[network_id].hub

    def servers(self) -> list[_Server]:
        return [s for n in self.nets.values() for s in (n.hub, *n.nodes)]

    async def settle(self, max_rounds: int = 40) -> int:
        """Run every running server's outbox and every hub's relay until nothing is due
        (three quiet rounds: a hub's relay loop also runs by itself and may hold a row)."""
        total = 0
        quiet = 0
        for _ in range(max_rounds):
            moved = 0
            for s in self.servers():
                if s.running:
                    moved += await s.fed.run_once()
                    if isinstance(s, HubHandle):
                        moved += await s.relay.run_once()
            total += moved
            quiet = 0 if moved else quiet + 1
            if quiet >= 3:
                break
            if not moved:
                await asyncio.sleep(0.02)
        return total

    def compact(self, networks: list[str], signers: list[str] | None = None,
                extra: dict[str, list[SigningKey]] | None = None) -> SignedCompact:
        """The next compact version listing `networks`, signed by the boards of `signers`
        (default: the networks listed), plus the `extra` keys (e.g. a rotated board's old
        keys) filed under their network."""
        prev = self.compacts[-1] if self.compacts else None
        now = self.clock.now_ms()
        value = {
            "v": 1, "compact_id": "us-peer", "version": prev.version + 1 if prev else 1,
            "prev_sha256": prev.sha256 if prev else None, "issued_ts": now,
            "expires_ts": now + 365 * DAY,
            "networks": [self.nets[n].member() for n in sorted(networks)],
        }
        unsigned = build_signed_compact(value)
        sigs = {}
        for nid in signers if signers is not None else networks:
            board = self.nets[nid].board
            sigs[nid] = [compact_signature(k, unsigned.compact_bytes)
                         for k in board.keys[: board.threshold]]
        for nid, keys in (extra or {}).items():
            sigs.setdefault(nid, []).extend(
                compact_signature(k, unsigned.compact_bytes) for k in keys)
        signed = build_signed_compact(value, sigs)
        self.compacts.append(signed)
        return signed

    async def install(self, signed: SignedCompact, networks: list[str] | None = None) -> None:
        """Install `signed` at the hubs (of `networks`, default all) and let everyone learn
        it and the rosters: hubs from each other, nodes from their hub."""
        for nid in networks or list(self.nets):
            hub = self.nets[nid].hub
            if hub.running:
                await hub.fed.interstate.store.accept([signed])  # type: ignore[union-attr]
        await self.learn()

    async def learn(self) -> None:
        for n in self.nets.values():
            if n.hub.running:
                await n.hub.fed.refresh_interstate()
        for n in self.nets.values():
            for node in n.nodes:
                if node.running:
                    await node.fed.refresh_interstate()

    async def close(self) -> None:
        for s in self.servers():
            await s.stop()
        if self._pg is not None:
            admin, names = self._pg
            for name in names:
                await drop_database(admin, name)


async def make_pair(
    tmp_path: Path, *, db: str = "sqlite", pg_admin_url: str | None = None,
    clock: FakeClock | None = None, install: bool = True,
) -> Pair:
    clock = clock or FakeClock()
    pg_names: list[str] = []

    async def new_db(name: str) -> str:
        if db == "sqlite":
            return f"sqlite:///{tmp_path / (name + '.db')}"
        assert pg_admin_url is not None, "db='postgres' needs pg_admin_url"
        dbname = "t_" + uuid.uuid4().hex[:16]
        pg_names.append(dbname)
        return await create_database(pg_admin_url, dbname)

    pair = Pair(clock, {}, _pg=(pg_admin_url, pg_names) if pg_admin_url else None)
    try:
        for nid, agencies in AGENCIES.items():
            board = TestBoard.make(3, 2)
            sock = _bound_socket()
            hub_id = f"hub-{nid}"
            hub = HubHandle(hub_id, NodeKeys.generate(), sock.getsockname()[1],
                            await new_db(f"{nid}-{hub_id}"), False, sock=sock, clock=clock)
            nodes = []
            for a in agencies:
                s = _bound_socket()
                nodes.append(NodeHandle(a, NodeKeys.generate(), s.getsockname()[1],
                                        await new_db(f"{nid}-{a}"), False, sock=s, clock=clock))
            entries = [node_entry(hub_id, hub.keys, hub.url, roles=["hub"], disciplines=[],
                                  region="state")]
            entries += [node_entry(n.node_id, n.keys, n.url, disciplines=["fire"],
                                   region="north") for n in nodes]
            net = StateNet(nid, board, hub, nodes)
            net.roster = board.sign(board.roster(1, nodes=entries, now=clock.now_ms()))
            keys = board.board().keys
            hub.settings = HubSettings(
                hub_id=hub_id, name=f"Hub {nid}", data_dir=tmp_path / nid / hub_id,
                db_url=hub.db_url, public_url=hub.url, board_keys=keys,
                board_threshold=board.threshold, operator_token=SecretStr(OPERATOR_TOKEN),
                network_id=nid,
            )
            for n in nodes:
                (tmp_path / nid / n.node_id).mkdir(parents=True, exist_ok=True)
                n.settings = NodeSettings(
                    node_id=n.node_id, name=n.node_id.replace("-", " ").title(),
                    data_dir=tmp_path / nid / n.node_id, db_url=n.db_url, public_url=n.url,
                    hub_url=hub.url, board_keys=keys, board_threshold=board.threshold,
                    audit_sign_interval_s=3600, network_id=nid,
                )
            pair.nets[nid] = net
            await hub.start()
            await hub.fed.roster.accept([net.roster])
            for n in nodes:
                await n.start()
        if install:
            await pair.install(pair.compact(list(AGENCIES)))
    except BaseException:
        await pair.close()
        raise
    return pair
