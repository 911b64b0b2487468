"""`make_shared_network`: `tests.federation.network.make_network` plus a real helper
aggregator (`helper.app.create_app`) on its own port and database, and roster version 2
naming it (role `helper`) with `policy.privacy.aggregation = "shared"`.

    net = await make_shared_network(3, tmp_path=tmp_path, db="sqlite")
    net.helper                      # HelperHandle: .fed, .db, .url
    await net.settle()              # hub, helper and nodes, until nothing is due
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from federation.clock import FakeClock
from federation.keystore import NodeKeys
from federation.roster import Policy
from federation.service import FederationService
from helper.app import DB as HELPER_DB
from helper.app import FEDERATION as HELPER_FEDERATION
from helper.app import create_app as create_helper_app
from helper.config import HelperSettings
from peernet.throwaway_pg import create_database
from tests.federation.boards import node_entry
from tests.federation.network import Network, _Server, make_network

HELPER_ID = "state-helper"
HELPER_TOKEN = "test-helper-token"


@dataclass
class HelperHandle(_Server):
    settings: HelperSettings | None = None
    clock: FakeClock = field(default_factory=FakeClock)

    def _make_app(self) -> web.Application:
        assert self.settings is not None
        return create_helper_app(self.settings, clock=self.clock, keys=self.keys)

    @property
    def fed(self) -> FederationService:
        assert self.app is not None
        return self.app[HELPER_FEDERATION]

    @property
    def db(self) -> Any:
        assert self.app is not None
        return self.app[HELPER_DB]


@dataclass
class SharedNetwork:
    net: Network
    helper: HelperHandle

    def __getattr__(self, name: str) -> Any:
        return getattr(self.net, name)

    async def settle(self, max_rounds: int = 40) -> int:
        """Outboxes, the relay and the helper until two passes in a row move nothing (the
        hub's relay also runs in the background: a second quiet pass catches its work)."""
        total, quiet = 0, 0
        for _ in range(max_rounds):
            moved = await self.net.settle()
            if self.helper.running:
                moved += await self.helper.fed.run_once()
            total += moved
            quiet = quiet + 1 if not moved else 0
            if quiet == 2:
                break
            await asyncio.sleep(0)
        return total

    async def close(self) -> None:
        await self.helper.stop()
        await self.net.close()


def _sock() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def make_shared_network(
    n_nodes: int, *, tmp_path: Path, db: str = "sqlite", pg_admin_url: str | None = None,
    policy: dict[str, Any] | None = None,
) -> SharedNetwork:
    net = await make_network(n_nodes, tmp_path=tmp_path, db=db, pg_admin_url=pg_admin_url)
    try:
        if db == "sqlite":
            url = f"sqlite:///{tmp_path / 'helper.db'}"
        else:
            assert pg_admin_url is not None and net._pg is not None
            import uuid

            name = "t_" + uuid.uuid4().hex[:16]
            net._pg[1].append(name)
            url = await create_database(pg_admin_url, name)
        sock = _sock()
        keys = NodeKeys.generate()
        helper = HelperHandle(HELPER_ID, keys, sock.getsockname()[1], url, False, sock=sock,
                              clock=net.clock)
        helper.settings = HelperSettings(
            helper_id=HELPER_ID, name="State helper", data_dir=tmp_path / HELPER_ID,
            db_url=url, public_url=helper.url, hub_url=net.hub.url,
            board_keys=net.board.board().keys, board_threshold=net.board.threshold,
            operator_token=SecretStr(HELPER_TOKEN),
        )
        privacy = {**net.roster.roster.policy.privacy.model_dump(mode="json"),
                   "aggregation": "shared", "helper": HELPER_ID, **(policy or {})}
        new_policy = Policy.model_validate(
            {**net.roster.roster.policy.model_dump(mode="json"), "privacy": privacy})
        nodes = [*net.roster.roster.nodes,
                 node_entry(HELPER_ID, keys, helper.url, roles=["helper"], disciplines=[],
                            region="state")]
        signed = net.board.sign(net.board.next(net.roster, now=net.clock.now_ms(),
                                               nodes=nodes, policy=new_policy))
        await net.publish(signed)
        await helper.start()
        await helper.fed.roster.accept([signed])
        await net.hub.relay.stop()  # relay only in settle(): tests decide when things move
    except BaseException:
        await net.close()
        raise
    return SharedNetwork(net, helper)
