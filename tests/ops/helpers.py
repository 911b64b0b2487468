"""Helpers for the operations tests: a real hub and two real nodes (`make_network`) whose
first node has key files and a config file as `node init` writes them, the real CLI run in
a thread (the servers keep serving in the test's loop), and database wipes per engine."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from federation.clock import FakeClock
from federation.keystore import COST_FLOOR
from node.cli import node_group
from node.core.pseudonym import create_key_file
from node.core.vocabulary import Role
from peernet.throwaway_pg import create_database, drop_database
from tests.activations.netutil import add_user
from tests.federation.network import Network, NodeHandle, make_network
from tests.node.conftest import encounter

PHRASE = "a long enough passphrase"
BACKUP_PHRASE = "backup passphrase kept apart"
ENV = {"PEERNET_PASSPHRASE": PHRASE, "PEERNET_BACKUP_PASSPHRASE": BACKUP_PHRASE}


@dataclass
class OpsNet:
    net: Network
    node: NodeHandle
    peer: NodeHandle
    cfg: Path
    token: str
    kind: str
    pg_admin: str | None


async def make_ops_net(tmp_path: Path, db_url: str, request: Any) -> OpsNet:
    kind = "postgres" if db_url.startswith("postgresql") else "sqlite"
    pg = request.getfixturevalue("pg_admin_url") if kind == "postgres" else None
    net = await make_network(2, tmp_path=tmp_path, db=kind, pg_admin_url=pg,
                             clock=FakeClock(int(time.time() * 1000)))
    node, peer = net.nodes
    assert node.settings is not None
    node.keys.save(node.settings.key_path, PHRASE, cost=COST_FLOOR)
    create_key_file(node.settings.pseudonym_key_path, PHRASE)
    cfg = tmp_path / "node.toml"
    cfg.write_text(node.settings.to_toml(), encoding="utf-8")
    _, token = await add_user(node, "sup1", Role.PEER_SUPPORTER)
    return OpsNet(net, node, peer, cfg, token, kind, pg)


def _invoke(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(node_group, args, env=env)


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The real `peernet node ...` in a thread; (exit code, stdout + stderr)."""
    r = await asyncio.to_thread(_invoke, list(args), ENV if env is None else env)
    return r.exit_code, r.output


async def post_encounter(ops: OpsNet, http: aiohttp.ClientSession, **kw: Any) -> str | None:
    """POST one encounter through the node's API; its id once the node answered 201."""
    async with http.post(ops.node.url + "/api/v1/encounters", json=encounter(**kw),
                         headers={"Authorization": f"Bearer {ops.token}"}) as resp:
        if resp.status != 201:
            return None
        return str((await resp.json())["id"])


async def scalar(node: NodeHandle, sql: str) -> Any:
    async with node.db.read() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def wipe(ops: OpsNet) -> None:
    """Stop the node, then destroy its database and key files."""
    node = ops.node
    await node.stop()
    if ops.kind == "sqlite":
        path = Path(make_url(node.db_url).database or "")
        for side in ("", "-wal", "-shm"):
            Path(f"{path}{side}").unlink(missing_ok=True)
    else:
        assert ops.pg_admin is not None
        name = make_url(node.db_url).database or ""
        await drop_database(ops.pg_admin, name)
        await create_database(ops.pg_admin, name)
    assert node.settings is not None
    for key in (node.settings.key_path, node.settings.pseudonym_key_path):
        os.unlink(key)
