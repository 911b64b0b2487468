"""SQLite group commit on the loop (`node.core.audit_sqlite`): a group gathers every write
the loop has ready; a lock held by another process is waited for without stalling the loop,
and past the busy wait each write is answered `busy` with nothing stored; without an inline
connection writes go the slow way; dispose waits for the drain and closes the connection."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from federation.database import make_engine, migrate
from federation.sqlite_lock import DatabaseBusy
from node.core import audit, audit_sqlite
from node.core.db import Database
from tests.node.conftest import MakeNode, encounter
from tests.node.test_audit_group import _group_sizes

_META = sa.MetaData()
_ITEMS = sa.Table(
    "run_items", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(20), nullable=False),
)


async def _open(path: Path) -> Database:
    db = Database(make_engine(f"sqlite:///{path}"))
    await migrate(db.engine, "node:migrations")
    async with db.write() as conn:
        await conn.run_sync(_META.create_all)
    await _write(db, 0)  # warms the head: the next writes take the group path
    return db


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await _open(tmp_path / "run.db")
    yield db
    await db.dispose()


async def _write(db: Database, i: int) -> dict[str, Any]:
    return await audit.record(db, rows=[(_ITEMS, {"id": i, "name": f"n{i}"})], ts=1,
                              action="item.create")


async def _ids(db: Database) -> list[int]:
    async with db.read() as conn:
        return sorted((await conn.execute(sa.select(_ITEMS.c.id))).scalars())


async def test_a_group_gathers_every_write_the_loop_has_ready(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _write(sqlite_db, 1)  # opens the group connection
    sizes = _group_sizes(sqlite_db, monkeypatch)
    rows = await asyncio.gather(*[_write(sqlite_db, i) for i in range(2, 26)])
    assert [r["seq"] for r in rows] == list(range(rows[0]["seq"], rows[0]["seq"] + 24))
    assert sizes == [24], sizes  # one transaction for all of them
    monkeypatch.setattr(audit_sqlite, "MAX_GROUP", 10)
    sizes.clear()
    await asyncio.gather(*[_write(sqlite_db, i) for i in range(26, 51)])
    assert sizes == [10, 10, 5], sizes  # a group never holds more than MAX_GROUP writes
    assert await _ids(sqlite_db) == list(range(51))


class _Sampler:
    """The loop's longest gap between 1 ms ticks while it runs."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.perf_counter() - t0 - 0.001)

    async def stop(self) -> float:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return self.worst


def _hold_lock(path: Path, seconds: float) -> threading.Event:
    """Another connection takes the write lock now and lets it go after `seconds`."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    done = threading.Event()

    def release() -> None:
        other.execute("ROLLBACK")
        other.close()
        done.set()

    threading.Timer(seconds, release).start()
    return done


async def test_a_held_lock_is_waited_for_without_stalling_the_loop(
    sqlite_db: Database, tmp_path: Path
) -> None:
    await _write(sqlite_db, 1)
    released = _hold_lock(tmp_path / "run.db", 0.4)
    sampler = _Sampler()
    start = time.perf_counter()
    await asyncio.gather(*[_write(sqlite_db, i) for i in range(2, 10)])
    assert time.perf_counter() - start >= 0.3 and released.is_set()  # they waited for it
    assert await sampler.stop() < 0.1  # the loop went on meanwhile
    assert await _ids(sqlite_db) == list(range(10))


async def test_past_the_busy_wait_each_write_is_answered_busy_and_nothing_stored(
    sqlite_db: Database, tmp_path: Path
) -> None:
    await _write(sqlite_db, 1)
    sqlite_db.busy_wait_s = 0.2
    released = _hold_lock(tmp_path / "run.db", 1.0)
    results = await asyncio.gather(*[_write(sqlite_db, i) for i in range(2, 6)],
                                   return_exceptions=True)
    assert all(isinstance(r, DatabaseBusy) for r in results), results
    await asyncio.to_thread(released.wait, 5)
    assert await _ids(sqlite_db) == [0, 1]
    await asyncio.gather(*[_write(sqlite_db, i) for i in range(2, 6)])  # and then they land
    assert await _ids(sqlite_db) == list(range(6))


async def test_without_an_inline_connection_writes_go_the_slow_way(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_inline(db: Database, group: Any) -> bool:
        return False

    monkeypatch.setattr(audit_sqlite, "_connect", no_inline)
    sizes = _group_sizes(sqlite_db, monkeypatch)
    rows = await asyncio.gather(*[_write(sqlite_db, i) for i in range(1, 5)])
    assert sizes == [] and sorted(r["seq"] for r in rows) == [2, 3, 4, 5]
    assert await _ids(sqlite_db) == list(range(5))


async def test_dispose_waits_for_the_drain_and_closes_the_group_connection(
    tmp_path: Path
) -> None:
    db = await _open(tmp_path / "d.db")
    await _write(db, 1)
    writes = [asyncio.ensure_future(_write(db, i)) for i in range(2, 6)]
    await asyncio.sleep(0)  # queued, the drain gathering
    group = db.write_group
    assert group.conn is not None and group.running
    await db.dispose()
    assert all(w.done() and w.exception() is None for w in writes)
    assert group.conn is None


async def test_encounter_writes_are_one_transaction_on_the_group_connection(
    make_node: MakeNode
) -> None:
    node = await make_node()
    if not node.ctx.db.is_sqlite:
        pytest.skip("SQLite's group commit")
    await node.post("sup1", "/api/v1/encounters", encounter())  # warms the head
    await node.post("sup1", "/api/v1/encounters", encounter())  # opens the group connection
    conn = node.ctx.db.write_group.conn
    traced: list[str] = []
    conn.set_trace_callback(traced.append)
    results = await asyncio.gather(*[
        node.post("sup1", "/api/v1/encounters", encounter(recipient=f"R{i}")) for i in range(8)])
    conn.set_trace_callback(None)
    assert [s for s, _ in results] == [201] * 8
    kinds = [s.split(" (")[0].split(" VALUES")[0].split(" SET")[0] for s in traced]
    assert kinds == ["BEGIN IMMEDIATE", "UPDATE audit_head", "INSERT INTO encounters",
                     "INSERT INTO audit_log", "COMMIT"], kinds  # all 8 in one group
    assert traced[2].count("), (") == 7  # eight rows in one INSERT
    assert await node.count("encounters") == 10


async def test_a_uri_database_without_inline_connections_writes_the_slow_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = await _open(tmp_path / "u.db")  # the schema, through a plain path
    await plain.dispose()
    db = Database(make_engine(f"sqlite:///file:{tmp_path / 'u.db'}?mode=rw&uri=true"))
    try:
        assert db.write_engine is db.engine  # threaded connections only
        sizes = _group_sizes(db, monkeypatch)
        await _write(db, 1)  # learns the head
        rows = await asyncio.gather(*[_write(db, i) for i in range(2, 6)])
        assert sorted(r["seq"] for r in rows) == [3, 4, 5, 6] and sizes == []
        assert db.write_group.no_inline
        assert await _ids(db) == list(range(6))
    finally:
        await db.dispose()
