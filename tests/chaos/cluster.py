"""A hub and agency nodes as separate OS processes on loopback, set up with the real CLI.

Setup runs the `peernet` click commands (`board init`, `hub init`, `node init`,
`node public-info`, `board add-node`, `board sign`, `board combine`, `hub install-roster`,
`node user add`, `node token create`) in-process through click's runner (one Python start
instead of twenty; the commands are the same code), in a worker thread because several of
them call `asyncio.run`. The servers are `peernet hub serve` / `peernet node serve` child
processes, each in its own session, with stdout and stderr in a log file per server:

    cluster = await build_cluster(tmp_path, n_nodes=3, pg_admin_url=url, pg_hub=True,
                                  pg_nodes=(1,))
    try:
        await cluster.start_all()
        cluster.nodes[1].kill9(); await cluster.nodes[1].restart()
        ...
    finally:
        await cluster.close()          # every child killed, throwaway databases dropped

Node ids are `agency-1` ... `agency-N`, the hub is `hub-state`. Each node has a
coordinator `coord` with an API token (`node.token`). Ports are picked free on 127.0.0.1
before the roster is signed (the roster names every endpoint). The `Cluster` can also open
any server's database directly (`engine(server)`) for the checks after a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.database import make_engine
from peernet.throwaway_pg import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = "import sys; from peernet.cli import main; sys.exit(main())"
BOARD_PASSPHRASE = "chaos board passphrase"
HUB_PASSPHRASE = "chaos hub passphrase"
NODE_PASSPHRASE = "chaos node passphrase"
OPERATOR_TOKEN = "chaos-operator-token"
PASSWORD = "correct horse battery"
HUB_ID = "hub-state"
DISCIPLINES = ["fire", "law_enforcement", "dispatch_911", "ems", "corrections"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def invoke(args: Sequence[str], env: dict[str, str], stdin: str | None = None) -> str:
    """Run one `peernet` command in-process; its output, or AssertionError on failure."""
    from peernet.cli import main

    res = CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)
    if res.exit_code != 0:
        raise AssertionError(f"peernet {' '.join(args)} failed ({res.exit_code}): {res.output}")
    return res.output


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERNET_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Server:
    """One `peernet <kind> serve` child process that can be killed and restarted."""

    name: str
    kind: str  # "node" | "hub"
    config: Path
    port: int
    env: dict[str, str]
    log: Path
    db_url: str = ""
    token: str = ""  # coordinator API token (nodes)
    proc: subprocess.Popen[bytes] | None = None
    serve_args: tuple[str, ...] = ()  # more `serve` options, e.g. ("--workers", "2")
    starts: int = 0
    kills: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts + 1} at {time.time():.3f}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCH, self.kind, "serve", "--config", str(self.config),
                 "--port", str(self.port), *self.serve_args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.config.parent, start_new_session=True,
            )
        self.starts += 1

    async def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n"
                                         + self.tail())
                try:
                    async with http.get(f"{self.url}/healthz",
                                        timeout=aiohttp.ClientTimeout(total=5)) as r:
                        if r.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} not ready in {timeout}s:\n" + self.tail())
                await asyncio.sleep(0.2)

    async def start(self) -> None:
        self.spawn()
        await self.wait_ready()

    def kill9(self) -> None:
        """SIGKILL: no shutdown hooks, no flush; whatever was committed stays."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@dataclass
class Cluster:
    root: Path
    hub: Server
    nodes: list[Server]
    board_dir: Path
    pg: tuple[str, list[str]] | None = None
    _engines: dict[str, AsyncEngine] = field(default_factory=dict)

    def servers(self) -> list[Server]:
        return [self.hub, *self.nodes]

    def node(self, name: str) -> Server:
        return next(n for n in self.nodes if n.name == name)

    async def start_all(self) -> None:
        await self.hub.start()
        for n in self.nodes:
            n.spawn()
        await asyncio.gather(*(n.wait_ready() for n in self.nodes))

    def engine(self, server: Server) -> AsyncEngine:
        if server.name not in self._engines:
            self._engines[server.name] = make_engine(server.db_url)
        return self._engines[server.name]

    def kill_all(self) -> None:
        for s in self.servers():
            if s.alive:
                assert s.proc is not None
                os.kill(s.proc.pid, signal.SIGKILL)
                s.proc.wait(30)

    def stop_all(self) -> None:
        for s in self.servers():
            s.stop()

    async def close(self) -> None:
        self.kill_all()
        for e in self._engines.values():
            await e.dispose()
        self._engines.clear()
        if self.pg is not None:
            admin, names = self.pg
            for name in names:
                try:
                    await drop_database(admin, name)
                except Exception:  # noqa: BLE001, S110 - best effort at teardown
                    pass

    def logs(self) -> dict[str, str]:
        return {s.name: s.log.read_text(errors="replace") for s in self.servers()
                if s.log.exists()}


def _set_toml(path: Path, values: dict[str, Any]) -> None:
    """Replace or add top-level keys of a flat TOML file (what an operator edits by hand)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    done: set[str] = set()
    out = []
    for line in lines:
        key = line.split("=", 1)[0].strip()
        if key in values:
            out.append(f"{key} = {json.dumps(values[key])}")
            done.add(key)
        else:
            out.append(line)
    out += [f"{k} = {json.dumps(v)}" for k, v in values.items() if k not in done]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


async def build_cluster(
    root: Path,
    *,
    n_nodes: int = 3,
    pg_admin_url: str | None = None,
    pg_hub: bool = False,
    pg_nodes: tuple[int, ...] = (),
    node_env: dict[str, str] | None = None,
    hub_env: dict[str, str] | None = None,
    hub_endpoint: str | None = None,
) -> Cluster:
    """Initialise a board, a hub and `n_nodes` nodes with the CLI; nothing is started.
    Nodes numbered in `pg_nodes` (`agency-<n>`), and the hub with `pg_hub`, get fresh
    PostgreSQL databases.
    `hub_endpoint` overrides the URL the roster lists for the hub (a proxy in front)."""
    pg_names: list[str] = []

    async def pg_db() -> str:
        assert pg_admin_url is not None, "PostgreSQL needs pg_admin_url"
        name = "chaos_" + uuid.uuid4().hex[:12]
        pg_names.append(name)
        return await create_database(pg_admin_url, name)

    hub_db = await pg_db() if pg_hub else ""
    node_dbs = [await pg_db() if i + 1 in pg_nodes else "" for i in range(n_nodes)]
    cluster_pg = (pg_admin_url, pg_names) if pg_names and pg_admin_url else None
    hub_port = free_port()
    ports = [free_port() for _ in range(n_nodes)]
    board = root / "board"
    env = {
        "PEERNET_BOARD_PASSPHRASE": BOARD_PASSPHRASE,
        "PEERNET_HUB_PASSPHRASE": HUB_PASSPHRASE,
        "PEERNET_PASSPHRASE": NODE_PASSPHRASE,
    }

    def setup() -> tuple[Server, list[Server]]:
        invoke(["board", "init", "--dir", str(board), "--keys", "3", "--threshold", "2"], env)
        hub_cfg = root / "hub.toml"
        hub_url = f"http://127.0.0.1:{hub_port}"
        invoke(["hub", "init", "--config", str(hub_cfg), "--hub-id", HUB_ID, "--name",
                "State hub", "--data-dir", str(root / "hub"), "--port", str(hub_port),
                "--public-url", hub_endpoint or hub_url, "--board", str(board / "board.json"),
                *(["--db-url", hub_db] if hub_db else [])], env)
        invoke(["board", "add-node", "--dir", str(board), "--info",
                str(root / "hub" / "hub-info.json")], env)
        pin = json.loads((board / "board.json").read_text())
        nodes = []
        for i in range(n_nodes):
            node_id = f"agency-{i + 1}"
            cfg = root / f"{node_id}.toml"
            invoke(["node", "init", "--config", str(cfg), "--node-id", node_id, "--name",
                    f"Agency {i + 1}", "--data-dir", str(root / node_id), "--port",
                    str(ports[i]), "--discipline", DISCIPLINES[i % len(DISCIPLINES)],
                    "--region", "north" if i % 2 == 0 else "south", "--password-stdin",
                    *(["--db-url", node_dbs[i]] if node_dbs[i] else [])],
                   env, stdin=PASSWORD + "\n")
            _set_toml(cfg, {"public_url": f"http://127.0.0.1:{ports[i]}", "hub_url": hub_url,
                            "board_keys": pin["keys"], "board_threshold": pin["threshold"],
                            "audit_sign_interval_s": 2})
            info = root / f"{node_id}-info.json"
            invoke(["node", "public-info", "--config", str(cfg), "--out", str(info)], env)
            invoke(["board", "add-node", "--dir", str(board), "--info", str(info)], env)
            invoke(["node", "user", "add", "coord", "--config", str(cfg), "--role",
                    "coordinator", "--password-stdin"], env, stdin=PASSWORD + "\n")
            token = invoke(["node", "token", "create", "--config", str(cfg), "--user",
                            "coord"], env).strip().splitlines()[-1]
            db_url = node_dbs[i] or f"sqlite:///{root / node_id / 'node.db'}"
            nodes.append(Server(
                node_id, "node", cfg, ports[i],
                child_env({"PEERNET_PASSPHRASE": NODE_PASSPHRASE, **(node_env or {})}),
                root / f"{node_id}.log", db_url=db_url, token=token))
        sigs = []
        for k in (1, 2):
            out = root / f"sig{k}.json"
            invoke(["board", "sign", "--dir", str(board), "--key",
                    str(board / "keys" / f"board-key-{k}.json"), "--out", str(out)], env)
            sigs.append(str(out))
        invoke(["board", "combine", "--dir", str(board), *sigs], env)
        invoke(["hub", "install-roster", "--config", str(hub_cfg),
                str(board / "rosters" / "roster-000001.json")], env)
        hub = Server(
            HUB_ID, "hub", hub_cfg, hub_port,
            child_env({"PEERNET_HUB_PASSPHRASE": HUB_PASSPHRASE,
                       "PEERNET_HUB_OPERATOR_TOKEN": OPERATOR_TOKEN, **(hub_env or {})}),
            root / "hub.log", db_url=hub_db or f"sqlite:///{root / 'hub' / 'hub.db'}")
        return hub, nodes

    try:
        hub, nodes = await asyncio.to_thread(setup)
    except BaseException:
        if cluster_pg:
            for name in pg_names:
                await drop_database(cluster_pg[0], name)
        raise
    return Cluster(root, hub, nodes, board, cluster_pg)
