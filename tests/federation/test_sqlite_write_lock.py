"""SQLite write transactions under another process (issue 22): one `BEGIN IMMEDIATE` opens
every `db.write()`, so a read inside it is part of it; a foreign write lock never stalls
the event loop (async retry, then `busy`); checkpoints run off the loop and the WAL file
shrinks again. SQLite only: these are properties of the embedded engine's locking."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from federation.database import Database, make_engine
from federation.errors import FederationError
from federation.sqlite_checkpoint import WAL_LIMIT_BYTES
from federation.sqlite_lock import DatabaseBusy
from node.core.db import AuditEntry, AuditHead, table_of

_HEAD = table_of(AuditHead)
_LOG = table_of(AuditEntry)
_META = sa.MetaData()
_BLOBS = sa.Table("blobs", _META, sa.Column("id", sa.Integer, primary_key=True),
                  sa.Column("b", sa.LargeBinary))

# Another process's audit append: under its own write lock, the next seq after the head.
_FOREIGN_APPEND = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=20, isolation_level=None)
c.execute("BEGIN IMMEDIATE")
seq, = c.execute("SELECT seq FROM audit_head WHERE id = 1").fetchone()
c.execute("INSERT INTO audit_log (seq, ts, action, outcome, detail, prev_hash, hash) "
          "VALUES (?, 0, 'foreign', 'ok', '{}', 'p', 'h')", (seq + 1,))
c.execute("UPDATE audit_head SET seq = ? WHERE id = 1", (seq + 1,))
c.execute("COMMIT")
"""

# Another process holding the write lock (a purge from cron, say) for argv[2] seconds.
_FOREIGN_LOCK = """
import sqlite3, sys, time, pathlib
c = sqlite3.connect(sys.argv[1], timeout=20, isolation_level=None)
c.execute("BEGIN IMMEDIATE")
c.execute("INSERT INTO blobs (b) VALUES (x'00')")
pathlib.Path(sys.argv[1] + ".locked").write_text("1")
time.sleep(float(sys.argv[2]))
c.execute("COMMIT")
"""


@pytest.fixture
async def file_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(make_engine(f"sqlite:///{tmp_path / 'lock.db'}"))
    async with db.write() as conn:
        await conn.run_sync(lambda c: _HEAD.metadata.create_all(c, tables=[_HEAD, _LOG]))
        await conn.run_sync(_META.create_all)
        await conn.execute(sa.insert(_HEAD).values(id=1, seq=0, hash="genesis"))
    yield db
    await db.dispose()


def _path(db: Database) -> str:
    path = db.engine.url.database
    assert path
    return path


async def _python(script: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-c", script, *args)


async def test_a_read_inside_write_is_part_of_the_transaction(file_db: Database) -> None:
    """Read the head, let another process try to append, then append on what was read: the
    other process waits for the lock instead of taking the same seq (before: it appended
    in between and this commit collided on seq)."""
    async with file_db.write() as conn:
        seq = (await conn.execute(sa.select(_HEAD.c.seq).where(_HEAD.c.id == 1))).scalar_one()
        other = await _python(_FOREIGN_APPEND, _path(file_db))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                await other.wait()  # it cannot get in while this transaction is open
        await conn.execute(sa.insert(_LOG).values(
            seq=seq + 1, ts=1, action="mine", outcome="ok", detail="{}", prev_hash="genesis",
            hash="h1"))
        await conn.execute(sa.update(_HEAD).where(_HEAD.c.id == 1).values(seq=seq + 1))
    assert await other.wait() == 0
    async with file_db.read() as conn:
        rows = (await conn.execute(sa.select(_LOG.c.seq, _LOG.c.action).order_by(_LOG.c.seq))
                ).all()
        head = (await conn.execute(sa.select(_HEAD.c.seq))).scalar_one()
    assert [tuple(r) for r in rows] == [(1, "mine"), (2, "foreign")] and head == 2


async def _sampler(stop: asyncio.Event, worst: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.001)
        worst[0] = max(worst[0], time.perf_counter() - t0 - 0.001)


_STALL_LIMIT_S = 0.4


async def _wait_locked(db: Database) -> None:
    flag = Path(_path(db) + ".locked")
    async with asyncio.timeout(20):
        while not flag.exists():
            await asyncio.sleep(0.01)


async def test_a_foreign_write_lock_does_not_stall_the_loop(file_db: Database) -> None:
    other = await _python(_FOREIGN_LOCK, _path(file_db), "2.5")
    await _wait_locked(file_db)
    stop, worst = asyncio.Event(), [0.0]
    sampler = asyncio.create_task(_sampler(stop, worst))
    # Reads go on meanwhile; the write waits (asynchronously) and commits after the lock.
    async with file_db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(_HEAD))
                ).scalar_one() == 1
    t0 = time.monotonic()
    async with file_db.write() as conn:
        await conn.execute(sa.insert(_BLOBS).values(b=b"mine"))
    waited = time.monotonic() - t0
    stop.set()
    await sampler
    assert await other.wait() == 0
    assert waited > 0.5, waited  # it really waited for the other process
    # A blocking wait would stall the loop for the whole lock (2.5 s, as the old code did);
    # the bound is loose because a shared 2-core host can pause the process by itself
    # (the tight goal is bench.node_api's loop_stall_max_ms_foreign_lock, run alone).
    assert worst[0] < _STALL_LIMIT_S, f"event loop stalled {worst[0] * 1000:.1f} ms"
    async with file_db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(_BLOBS))
                ).scalar_one() == 2


async def test_a_write_lock_held_too_long_answers_busy_and_changes_nothing(
    file_db: Database,
) -> None:
    file_db.busy_wait_s = 0.4
    other = await _python(_FOREIGN_LOCK, _path(file_db), "2")
    await _wait_locked(file_db)
    stop, worst = asyncio.Event(), [0.0]
    sampler = asyncio.create_task(_sampler(stop, worst))
    with pytest.raises(DatabaseBusy) as err:
        async with file_db.write() as conn:
            await conn.execute(sa.insert(_BLOBS).values(b=b"refused"))
    stop.set()
    await sampler
    assert isinstance(err.value, FederationError)
    assert (err.value.code, err.value.status) == ("busy", 503)
    assert worst[0] < _STALL_LIMIT_S, f"event loop stalled {worst[0] * 1000:.1f} ms"
    assert await other.wait() == 0
    async with file_db.read() as conn:  # the foreign row only; nothing of the refused write
        assert (await conn.execute(sa.select(_BLOBS.c.b))).scalars().all() == [b"\x00"]
    async with file_db.write() as conn:  # the writer queue was released
        await conn.execute(sa.insert(_BLOBS).values(b=b"after"))


async def test_checkpoints_run_off_the_loop_and_the_wal_shrinks(file_db: Database) -> None:
    assert file_db.checkpointer is not None
    async with file_db.write() as conn:
        auto = (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one()
        limit = (await conn.exec_driver_sql("PRAGMA journal_size_limit")).scalar_one()
        busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
    assert (auto, limit, busy) == (0, WAL_LIMIT_BYTES, 0)
    wal = _path(file_db) + "-wal"
    chunk = os.urandom(60_000)
    for _ in range(12):  # ~7 MB through the WAL, past the checkpoint threshold
        async with file_db.write() as conn:
            await conn.execute(sa.insert(_BLOBS), [{"b": chunk}] * 10)
    assert file_db.checkpointer.runs >= 1  # started by a commit, on a thread
    await file_db.checkpoint()
    assert os.path.getsize(wal) <= WAL_LIMIT_BYTES
    async with file_db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(_BLOBS))
                ).scalar_one() == 120


async def test_a_checkpoint_asked_for_during_a_background_one_still_shrinks_the_wal(
    file_db: Database,
) -> None:
    """`db.checkpoint()` while the commit-started one is still copying: it waits for that
    one and then covers every commit (before: it ran beside it, got busy from SQLite and
    skipped the TRUNCATE, while the background one had started before the last commit, so
    the WAL stayed at its full size; the race hit about one round in five)."""
    ckpt = file_db.checkpointer
    assert ckpt is not None
    wal = _path(file_db) + "-wal"
    chunk = os.urandom(60_000)
    for _ in range(8):
        ckpt.at_bytes = 1 << 40  # no commit-started checkpoint while the WAL fills
        for _ in range(8):  # ~4.8 MB, past the limit
            async with file_db.write() as conn:
                await conn.execute(sa.insert(_BLOBS), [{"b": chunk}] * 10)
        ckpt.at_bytes = 0
        ckpt.after_commit()  # the background checkpoint starts...
        async with file_db.write() as conn:  # ...and one more commit lands behind it
            await conn.execute(sa.insert(_BLOBS).values(b=b"x"))
        await file_db.checkpoint()
        assert os.path.getsize(wal) <= WAL_LIMIT_BYTES
