"""Two `peernet node serve` processes over one PostgreSQL behind one address answer as one.

A round-robin proxy (a new connection per request, so requests alternate between the two
processes) stands in front of `agency-1` twice (same config, same key files, one
database); the hub is its own process. Through the proxy: the login form shown by one
process is accepted by the other (the form's key is derived from the node key, not drawn
per process), the session works on both, encounters are written through both. Releases
recorded with the CLI are queued by the two processes' release loops (every 0.3 s each):
each month reaches the hub once, as one outbox message, and every message the node sent the
hub was received there once.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from tests.chaos.cluster import (
    HUB_ID,
    NODE_PASSPHRASE,
    PASSWORD,
    Cluster,
    Server,
    build_cluster,
    free_port,
    invoke,
)
from tests.chaos.proxy import RoundRobinProxy
from tests.chaos.traffic import Traffic

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
HTML = {"Accept": "text/html"}


async def _rows(cluster: Cluster, server: Server, sql: str) -> list[Any]:
    async with cluster.engine(server).connect() as conn:
        return list((await conn.execute(text(sql))).all())


def _past_months(k: int) -> list[str]:
    now = datetime.now(UTC)
    y, m = now.year, now.month
    out = []
    for _ in range(k):
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
        out.append(f"{y:04d}-{m:02d}")
    return out


async def _until(pred: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await pred():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.3)


async def test_two_node_processes_behind_one_address(tmp_path: Path, pg_admin_url: str
                                                      ) -> None:
    proxy = RoundRobinProxy([])
    await proxy.start()
    cluster = await build_cluster(tmp_path, n_nodes=1, pg_admin_url=pg_admin_url,
                                  pg_nodes=(1,), node_env={"PEERNET_RELEASE_CHECK_S": "0.3"})
    a1 = cluster.nodes[0]
    a2 = Server(f"{a1.name}#2", "node", a1.config, free_port(), a1.env, tmp_path / "a2.log",
                db_url=a1.db_url, token=a1.token)
    proxy.backends = [a1.port, a2.port]
    try:
        await cluster.hub.start()
        await a1.start()  # migrations first, then the second process on the same database
        await a2.start()

        # --- a login form from one process, posted to the other -----------------------
        jar = aiohttp.CookieJar(unsafe=True)
        conn = aiohttp.TCPConnector(force_close=True)  # a new connection: the next process
        async with aiohttp.ClientSession(proxy.url, cookie_jar=jar, connector=conn) as web:
            r = await web.get("/login", headers=HTML)
            m = CSRF_RE.search(await r.text())
            assert r.status == 200 and m is not None
            r = await web.post("/login", data={"csrf": m.group(1), "username": "coord",
                                               "password": PASSWORD},
                               headers=HTML, allow_redirects=False)
            assert r.status == 303, await r.text()  # the old per-process secret: 403
            for _ in range(4):  # the session is good on both
                r = await web.get("/encounters/new", headers=HTML, allow_redirects=False)
                assert r.status == 200, r.headers.get("Location")

        # --- encounters through both ----------------------------------------------------
        front = Server("front", "node", a1.config, proxy.port, a1.env, tmp_path / "x.log",
                       db_url=a1.db_url, token=a1.token)
        front.proc = a1.proc  # `Traffic.call` asks whether the server is alive
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True)) as http:
            traffic = Traffic(cluster, random.Random(16), http)
            for _ in range(6):
                await traffic.write_encounter(front)
        assert len(traffic.encounters.get("front", [])) == 6, traffic.server_errors
        stored = await _rows(cluster, a1, "SELECT count(*) FROM encounters")
        assert stored[0][0] == 6
        assert proxy.connections[a1.port] >= 3 and proxy.connections[a2.port] >= 3

        # --- releases: each once, whichever process's loop queues it ------------------
        months = _past_months(3)
        for month in months:
            await asyncio.to_thread(invoke, ["node", "release", "--config", str(a1.config),
                                             "--month", month],
                                    {"PEERNET_PASSPHRASE": NODE_PASSPHRASE})

        async def at_hub() -> bool:
            got = await _rows(cluster, cluster.hub, "SELECT count(*) FROM aggregate_releases")
            return int(got[0][0]) >= len(months)

        await _until(at_hub, 60)

        async def settled() -> bool:
            pending = await _rows(cluster, a1, "SELECT count(*) FROM fed_outbox "
                                               "WHERE state = 'pending'")
            return int(pending[0][0]) == 0

        await asyncio.sleep(1.5)  # a second queueing, if any, would show by now
        await _until(settled, 60)
        sent = await _rows(cluster, a1, "SELECT msg_id, msg_type FROM fed_outbox "
                                        f"WHERE destination = '{HUB_ID}'")
        releases = [r for r in sent if r[1] == "aggregate_release"]
        assert len(releases) == len(months), sent
        ledger = await _rows(cluster, a1, "SELECT month FROM release_ledger")
        assert sorted(r[0] for r in ledger) == sorted(months)
        hub_got = await _rows(cluster, cluster.hub, "SELECT msg_id, msg_type FROM fed_inbox "
                                                    f"WHERE from_node = '{a1.name}'")
        assert sorted(hub_got) == sorted(sent)  # every message the hub got, once each
        hub_rel = await _rows(cluster, cluster.hub,
                              "SELECT month FROM aggregate_releases")
        assert sorted(r[0] for r in hub_rel) == sorted(months)
        for s in (a1, a2):
            assert " 500 " not in s.log.read_text(errors="replace")
    finally:
        a2.stop()
        await proxy.close()
        await cluster.close()
