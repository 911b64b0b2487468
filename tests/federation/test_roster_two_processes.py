"""Two node processes over one database and the stored roster (`federation.roster_sync`).

- Two stores accepting the same new version at the same moment (each process's refresh, or
  a fetch after a peer named the version) both succeed and store it once: on PostgreSQL the
  read-then-insert runs under a transaction advisory lock, as SQLite's BEGIN IMMEDIATE
  already serialises it. Two threads, each with its own event loop and engine (as two
  processes), meet at a barrier on their INSERT: without the lock both reach it, and the
  second fails with a unique violation.
- The periodic refresh from the hub is leader-locked: while another process holds the
  `roster-refresh` lock a node does not ask the hub, and a process that did not fetch
  adopts what the other stored from the database (`RosterStore.catch_up`) on its next pass.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import event, func, select

from federation.clock import FakeClock
from federation.database import Database, make_engine, migrate
from federation.leader_lock import leader
from federation.roster import SignedRoster
from federation.roster_sync import RosterStore
from federation.service import ROSTER_REFRESH_MS
from federation.store import rosters
from tests.federation.boards import TestBoard
from tests.federation.network import NodeHandle, _bound_socket

_BARRIER_S = 1.5


def _accept_in_thread(url: str, pin: Any, chain: list[SignedRoster], barrier: threading.Barrier,
                      out: list[BaseException | None]) -> None:
    async def run() -> None:
        engine = make_engine(url)
        db = Database(engine)

        def at_insert(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO FED_ROSTER"):
                try:
                    barrier.wait(_BARRIER_S)  # wait for the other process's INSERT
                except threading.BrokenBarrierError:
                    pass  # the other is waiting for our commit: go on alone
        for e in {id(x): x for x in (db.engine, db.write_engine)}.values():
            event.listen(e.sync_engine, "before_cursor_execute", at_insert)
        store = RosterStore(engine, FakeClock(), pin, db.write)
        await store.load()
        try:
            await store.accept(chain)
        finally:
            await db.dispose()

    try:
        asyncio.run(run())
        out.append(None)
    except BaseException as exc:  # reported by the test
        out.append(exc)


async def test_two_processes_accept_the_same_version_at_once(db_url: str) -> None:
    engine = make_engine(db_url)
    await migrate(engine, "node:migrations")
    board = TestBoard.make(3, 2)
    v1 = board.sign(board.roster(1, now=FakeClock().now_ms()))
    barrier = threading.Barrier(2)
    out: list[BaseException | None] = []
    threads = [threading.Thread(target=_accept_in_thread,
                                args=(db_url, board.pin(), [v1], barrier, out))
               for _ in range(2)]
    for t in threads:
        t.start()
    await asyncio.to_thread(lambda: [t.join(60) for t in threads])
    try:
        assert out == [None, None], out
        async with engine.connect() as conn:
            rows = (await conn.execute(select(rosters.c.version, rosters.c.sha256))).all()
        assert [tuple(r) for r in rows] == [(1, v1.sha256)]
    finally:
        await engine.dispose()


async def _second_process(first: NodeHandle) -> NodeHandle:
    """The same node (keys, settings, database) served by a second app on its own port."""
    sock = _bound_socket()
    twin = NodeHandle(first.node_id, first.keys, sock.getsockname()[1], first.db_url,
                      first.workers, sock=sock, clock=first.clock)
    assert first.settings is not None
    twin.settings = first.settings.model_copy()
    await twin.start()
    return twin


def _count_fetches(node: NodeHandle) -> list[str]:
    calls: list[str] = []
    original = node.fed.roster.fetch_from

    async def counting(http: Any, base_url: str, source: str | None = None) -> Any:
        calls.append(base_url)
        return await original(http, base_url, source)

    node.fed.roster.fetch_from = counting  # type: ignore[method-assign]
    return calls


async def _stored_versions(node: NodeHandle) -> list[int]:
    async with node.db.engine.connect() as conn:
        return list((await conn.execute(
            select(rosters.c.version).order_by(rosters.c.version))).scalars())


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_roster_refresh_is_led_by_one_process(network: Any, kind: str) -> None:
    net = await network(1, db=kind)
    first = net.nodes[0]
    second = await _second_process(first)
    try:
        fetched_first, fetched_second = _count_fetches(first), _count_fetches(second)
        assert first.fed.state.version == second.fed.state.version == 1

        v2 = net.board.sign(net.board.next(net.roster, now=net.clock.now_ms()))
        await net.hub.fed.roster.accept([v2])  # published at the hub only
        net.clock.advance(ROSTER_REFRESH_MS)

        # While the first process is refreshing (it holds the lock), the second does not
        # ask the hub.
        async with leader(first.db.engine, "roster-refresh") as lead:
            assert lead
            await second.fed._housekeeping()
        assert fetched_second == []
        assert second.fed.state.version == 1

        await first.fed._housekeeping()
        assert len(fetched_first) == 1
        assert first.fed.state.version == 2

        # The second adopts the stored version on its next pass; asking the hub then
        # stores nothing (the hub answers 304 for the version held).
        net.clock.advance(ROSTER_REFRESH_MS)
        await second.fed._housekeeping()
        assert second.fed.state.version == 2
        assert await _stored_versions(first) == [1, 2]

        # A message naming a version another process already stored: taken from the
        # database, nobody is asked.
        v3 = net.board.sign(net.board.next(v2, now=net.clock.now_ms()))
        await first.fed.roster.accept([v3])
        await second.fed._fetch_newer(net.hub.node_id, 3)
        assert second.fed.state.version == 3
        assert len(fetched_second) == 1

        # Both at once, a newer version at the hub: no error, stored once, both adopt it.
        v4 = net.board.sign(net.board.next(v3, now=net.clock.now_ms()))
        await net.hub.fed.roster.accept([v3, v4])
        net.clock.advance(ROSTER_REFRESH_MS)
        await asyncio.gather(first.fed._housekeeping(), second.fed._housekeeping())
        net.clock.advance(ROSTER_REFRESH_MS)
        await asyncio.gather(first.fed._housekeeping(), second.fed._housekeeping())
        assert first.fed.state.version == second.fed.state.version == 4
        assert await _stored_versions(first) == [1, 2, 3, 4]
        async with first.db.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(rosters))).scalar() == 4
    finally:
        await second.stop()
