"""`peernet node serve --workers N`: N forked worker processes serve one address over one
PostgreSQL database (SO_REUSEPORT), answer as one, and stop together; SQLite and a port 0
are refused before anything starts."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp
from click.testing import CliRunner

from tests.chaos import checks
from tests.chaos.cluster import build_cluster, invoke

ENCOUNTER = {
    "occurred_at": "2026-06-15T11:30:00Z", "duration_bucket": "15-30m",
    "activation_type": "self", "intervention": "one_on_one", "recipient_discipline": "fire",
    "recipient_category": "own_agency", "recipient": "E-1234", "topics": ["work_stress"],
    "notice_given": True,
}


def _children(pid: int) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = Path(f"/proc/{p}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(p))
    return sorted(out)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def test_two_workers_serve_one_address_and_stop_together(
    tmp_path: Path, pg_admin_url: str
) -> None:
    cluster = await build_cluster(tmp_path, n_nodes=1, pg_admin_url=pg_admin_url,
                                  pg_nodes=(1,))
    node = cluster.node("agency-1")
    node.serve_args = ("--workers", "2")
    try:
        await cluster.hub.start()
        await node.start()
        assert node.proc is not None
        workers = _children(node.proc.pid)
        assert len(workers) == 2, workers
        before = {w: _cpu_ticks(w) for w in workers}
        headers = {"Authorization": f"Bearer {node.token}"}
        # A new connection per request: the kernel spreads them over both workers' sockets.
        conn = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=conn) as http:
            async def write(i: int) -> str:
                async with http.post(node.url + "/api/v1/encounters", headers=headers,
                                     json=ENCOUNTER) as r:
                    assert r.status == 201, await r.text()
                    return str((await r.json())["id"])

            ids: list[str] = []
            for batch in range(10):
                ids += await asyncio.gather(*(write(batch * 20 + i) for i in range(20)))
        stored = [str(r[0]) for r in await checks.rows(cluster, node,
                                                       "SELECT id FROM encounters")]
        assert sorted(stored) == sorted(ids) and len(set(ids)) == 200  # each once, any worker
        busy = {w: _cpu_ticks(w) - before[w] for w in workers}
        assert all(t > 0 for t in busy.values()), busy  # both workers answered requests
        # One audit chain, whoever wrote: the CLI checks it end to end.
        out = await asyncio.to_thread(
            invoke, ["node", "audit", "verify", "--offline", "--config", str(node.config)],
            {"PEERNET_PASSPHRASE": node.env["PEERNET_PASSPHRASE"]})
        assert "audit log intact" in out, out

        os.kill(node.proc.pid, signal.SIGTERM)  # the parent passes it on to both workers
        assert node.proc.wait(30) == 0
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{w}").exists() for w in workers):
            assert time.monotonic() < deadline, "a worker outlived its parent"
            await asyncio.sleep(0.05)

        # A worker that dies takes the others down with it; the status says so.
        node.spawn()
        await node.wait_ready()
        workers = _children(node.proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        assert node.proc.wait(30) == 128 + signal.SIGKILL
        deadline = time.monotonic() + 10
        while Path(f"/proc/{workers[1]}").exists():
            assert time.monotonic() < deadline, "the other worker was left running"
            await asyncio.sleep(0.05)
    finally:
        cluster.stop_all()


async def test_workers_refused_on_sqlite_and_on_port_zero(tmp_path: Path) -> None:
    cluster = await build_cluster(tmp_path, n_nodes=1)
    node = cluster.node("agency-1")
    env = {"PEERNET_PASSPHRASE": node.env["PEERNET_PASSPHRASE"]}
    from peernet.cli import main

    for extra, code, says in ((["--workers", "2"], 1, "use PostgreSQL"),
                              (["--workers", "0"], 2, "--workers")):
        res = await asyncio.to_thread(CliRunner().invoke, main, [
            "node", "serve", "--config", str(node.config), *extra], env=env)
        assert res.exit_code == code and says in res.output, res.output
    async with aiohttp.ClientSession() as http:  # nothing was started
        try:
            async with http.get(node.url + "/healthz",
                                timeout=aiohttp.ClientTimeout(total=2)) as r:
                raise AssertionError(f"a server answered: {r.status}")
        except aiohttp.ClientConnectionError:
            pass


async def test_a_worker_that_cannot_start_says_so_in_one_line(
    tmp_path: Path, pg_admin_url: str
) -> None:
    """The port is held by another program: every worker fails to listen, and each says
    so in one line as the single-process serve does (no traceback); the status is 1."""
    import socket
    import subprocess
    import sys

    from tests.chaos.cluster import LAUNCH

    cluster = await build_cluster(tmp_path, n_nodes=1, pg_admin_url=pg_admin_url,
                                  pg_nodes=(1,))
    node = cluster.node("agency-1")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        res = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", LAUNCH, "node", "serve", "--config", str(node.config),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env={**os.environ, **node.env}, capture_output=True, text=True, timeout=120)
    finally:
        holder.close()
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    assert "address already in use" in res.stderr, res.stderr
