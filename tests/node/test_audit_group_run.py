"""SQLite group commit as runs on the driver thread (`node.core.audit._run_groups`): while
writes keep coming the thread commits group after group in one job, answering each group as
it commits; a writer queued for the in-process lock stops the run after the group in hand;
a closed loop ends it quietly; the database's dispose waits for it."""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from federation.database import make_engine, migrate
from node.core import audit
from node.core.db import Database

_META = sa.MetaData()
_ITEMS = sa.Table(
    "run_items", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(20), nullable=False),
)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(make_engine(f"sqlite:///{tmp_path / 'run.db'}"))
    await migrate(db.engine, "node:migrations")
    async with db.write() as conn:
        await conn.run_sync(_META.create_all)
    await _write(db, 0)  # warms the head: the next writes take the group path
    yield db
    await db.dispose()


async def _write(db: Database, i: int) -> dict[str, Any]:
    return await audit.record(db, rows=[(_ITEMS, {"id": i, "name": f"n{i}"})], ts=1,
                              action="item.create")


def _count(db: Database, monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """(group sizes, driver jobs started) from now on."""
    sizes: list[int] = []
    jobs: list[int] = []
    real_group, real_run = audit._write_group, audit._run_groups

    def group(conn: Any, items: Any) -> list[bool]:
        sizes.append(len(items))
        return real_group(conn, items)

    def run(*args: Any) -> None:
        jobs.append(1)
        real_run(*args)

    monkeypatch.setattr(audit, "_write_group", group)
    monkeypatch.setattr(audit, "_run_groups", run)
    return sizes, jobs


async def _ids(db: Database) -> list[int]:
    async with db.read() as conn:
        return sorted((await conn.execute(sa.select(_ITEMS.c.id))).scalars())


async def test_writes_that_keep_coming_are_committed_group_after_group_in_one_job(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "_LINGER_S", 2.0)  # the thread waits for the next wave
    sizes, jobs = _count(sqlite_db, monkeypatch)
    for wave in range(3):  # each wave is answered (committed) before the next is sent
        rows = await asyncio.gather(*[_write(sqlite_db, 10 * wave + i) for i in range(1, 9)])
        assert all(r["seq"] > 0 for r in rows)
        assert await _ids(sqlite_db) == [0] + [10 * w + i for w in range(wave + 1)
                                               for i in range(1, 9)]
    assert sum(sizes) == 24 and len(sizes) >= 3, sizes
    assert jobs == [1], jobs  # one hand-off to the thread for all three waves


async def test_a_queued_writer_stops_the_run_and_writes_go_on_after_it(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "_LINGER_S", 4.0)  # without the check, 4 s of waiting
    sizes, jobs = _count(sqlite_db, monkeypatch)
    await asyncio.gather(*[_write(sqlite_db, i) for i in range(1, 5)])  # a run is lingering
    start = time.monotonic()
    async with sqlite_db.write() as conn:
        await conn.execute(sa.insert(_ITEMS).values(id=100, name="between"))
    assert time.monotonic() - start < 2.5  # one linger slice (1 s), not the whole linger
    await asyncio.gather(*[_write(sqlite_db, i) for i in range(5, 9)])
    assert await _ids(sqlite_db) == [*range(9), 100]
    assert len(jobs) == 2, jobs  # the run gave the lock up; the next writes began another


def _conn_with_head(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq INTEGER, hash TEXT)")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.execute("INSERT INTO audit_head VALUES (1, 0, 'h0')")
    return conn


class _Db:
    """What `_run_groups` reads of the database handle."""

    def __init__(self, waiting: int = 0) -> None:
        self.writers_waiting = waiting


def _item(seq: int, fut: Any) -> Any:
    return (seq, f"h{seq}", seq - 1, f"h{seq - 1}"), [("INSERT INTO t VALUES (?)", [seq])], fut


def test_a_waiting_writer_ends_the_run_after_the_group_in_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "_LINGER_S", 2.0)
    conn = _conn_with_head(tmp_path / "g.db")
    loop = asyncio.new_event_loop()
    try:
        futs = [loop.create_future() for _ in range(2)]
        pending: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for i, f in enumerate(futs, start=1):
            pending.put(_item(i, f))
        start = time.monotonic()
        audit._run_groups(conn, _Db(waiting=1), pending, loop)  # type: ignore[arg-type]
        # One group, then back to the loop at once: no linger for more writes.
        assert time.monotonic() - start < 1.0
        loop.run_until_complete(asyncio.sleep(0))  # the answers are on the loop's queue
        assert [f.result() for f in futs] == [False, False]
        assert [r[0] for r in conn.execute("SELECT id FROM t ORDER BY id")] == [1, 2]
        start = time.monotonic()
        audit._run_groups(conn, _Db(waiting=1), pending, loop)  # type: ignore[arg-type]
        assert time.monotonic() - start < 1.0  # one slice of the linger, not all of it
    finally:
        loop.close()
        conn.close()


def test_a_run_ends_quietly_when_the_loop_is_closed(tmp_path: Path) -> None:
    conn = _conn_with_head(tmp_path / "g.db")
    loop = asyncio.new_event_loop()
    fut = loop.create_future()
    loop.close()
    pending: queue.SimpleQueue[Any] = queue.SimpleQueue()
    pending.put(_item(1, fut))
    pending.put(_item(2, fut))
    audit._run_groups(conn, _Db(), pending, loop)  # type: ignore[arg-type]
    # The group was committed; with nobody to answer, the run stopped there.
    assert conn.execute("SELECT seq FROM audit_head").fetchone() == (2,)
    conn.close()


def test_a_run_with_no_writes_waits_its_linger_and_returns(tmp_path: Path) -> None:
    conn = _conn_with_head(tmp_path / "g.db")
    loop = asyncio.new_event_loop()
    try:
        start = time.monotonic()
        audit._run_groups(conn, _Db(), queue.SimpleQueue(), loop)  # type: ignore[arg-type]
        assert audit._LINGER_S * 0.9 <= time.monotonic() - start < 1.0
    finally:
        loop.close()
        conn.close()


async def test_dispose_waits_for_a_lingering_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "_LINGER_S", 0.4)
    db = Database(make_engine(f"sqlite:///{tmp_path / 'd.db'}"))
    await migrate(db.engine, "node:migrations")
    async with db.write() as conn:
        await conn.run_sync(_META.create_all)
    await _write(db, 0)
    await asyncio.gather(*[_write(db, i) for i in range(1, 4)])
    task = db.write_group.task
    assert task is not None and not task.done()  # the thread is lingering
    await db.dispose()
    assert task.done() and task.exception() is None
