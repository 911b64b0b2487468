"""Two processes migrating one fresh database at once: one upgrades, the other waits for it
and finds the schema current (`federation.migration_lock`).

Each case starts two real Python processes that call `federation.database.migrate` on the
same fresh database. A cross-process barrier makes the race certain rather than likely: each
process, at its first `CREATE TABLE`, waits (up to `_BARRIER_S`) until the other has reached
its own. Without the lock both arrive, both have read an empty `alembic_version`, and the
second fails (PostgreSQL: duplicate table / unique violation on the catalog; SQLite: table
already exists or a busy snapshot). With the lock the second never reaches a `CREATE`: the
first waits out the barrier alone and finishes; the second then finds every head applied.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, text

from federation.database import Database, make_engine, migrate

_ROOT = Path(__file__).resolve().parents[2]
_BARRIER_S = 1.5

_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from pathlib import Path
    from sqlalchemy import event
    from federation.database import make_engine, migrate

    url, package, barrier, wait_s = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
    arrived = False

    def at_create(conn, cursor, statement, params, context, executemany):
        global arrived
        if arrived or not statement.lstrip().upper().startswith("CREATE TABLE"):
            return
        arrived = True
        (barrier / f"at-create-{os.getpid()}").touch()
        end = time.monotonic() + wait_s
        while time.monotonic() < end and len(list(barrier.glob("at-create-*"))) < 2:
            time.sleep(0.01)

    async def main():
        engine = make_engine(url)
        event.listen(engine.sync_engine, "before_cursor_execute", at_create)
        (barrier / f"ready-{os.getpid()}").touch()
        while len(list(barrier.glob("ready-*"))) < 2:  # start the upgrades together
            await asyncio.sleep(0.005)
        try:
            await migrate(engine, package + ":migrations")
        finally:
            await engine.dispose()

    asyncio.run(main())
    """
)


def _left_to_apply(package: str, current: list[str]) -> list[str]:
    """Revisions between the stored `current` heads and the package's heads (a head another
    revision depends on is implied by that one, not stored)."""
    cfg = Config()
    cfg.set_main_option("script_location", f"{package}:migrations")
    script = ScriptDirectory.from_config(cfg)
    return [r.revision for r in script.iterate_revisions("heads", tuple(current))]


async def _migrate_twice_at_once(url: str, package: str, barrier: Path) -> list[tuple[int, str]]:
    barrier.mkdir()
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _SCRIPT, url, package, str(barrier), str(_BARRIER_S),
            cwd=_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    out = []
    for p in procs:
        _stdout, stderr = await asyncio.wait_for(p.communicate(), 120)
        out.append((int(p.returncode or 0), stderr.decode()[-2000:]))
    return out


@pytest.mark.parametrize("package", ["node", "hub"])
async def test_two_processes_migrate_one_fresh_database(
    db_url: str, package: str, tmp_path: Path
) -> None:
    results = await _migrate_twice_at_once(db_url, package, tmp_path / "barrier")
    assert [code for code, _ in results] == [0, 0], [err for _, err in results]
    # Only one process ran DDL: the other waited for the lock, then had nothing to do.
    assert len(list((tmp_path / "barrier").glob("at-create-*"))) == 1

    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars()
            versions = list(rows)
            # Applied once and completely: each stored head once, nothing left to apply.
            assert versions and len(versions) == len(set(versions))
            assert _left_to_apply(package, versions) == []
            if package == "node":
                head = (await conn.execute(text("SELECT count(*) FROM audit_head"))).scalar()
                assert head == 1  # the base revision's seed row, inserted once
    finally:
        await engine.dispose()


async def test_a_server_writing_meanwhile_does_not_break_the_upgrade(tmp_path: Path) -> None:
    """SQLite: the upgrade holds the write lock from its first statement (BEGIN IMMEDIATE
    on a server's `Database` engine). Before, it began as a reader: a commit by another
    process (a running server) between its first read and its first CREATE made SQLite
    refuse the upgrade at once ("database is locked", no busy wait for a stale snapshot)."""
    path = tmp_path / "n.db"
    db = Database(make_engine(f"sqlite:///{path}"))
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE server_rows (x INTEGER)")
    wrote: list[bool] = []

    def at_create(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if wrote or not statement.lstrip().upper().startswith("CREATE TABLE"):
            return
        try:  # the other process commits a write right now
            other.execute("INSERT INTO server_rows VALUES (1)")
            wrote.append(True)
        except sqlite3.OperationalError:
            wrote.append(False)  # it waits for the upgrade's lock (with its own retries)

    event.listen(db.engine.sync_engine, "before_cursor_execute", at_create)
    try:
        await migrate(db.engine, "node:migrations")
        assert wrote == [False]
        async with db.read() as conn:
            versions = list((await conn.execute(
                text("SELECT version_num FROM alembic_version"))).scalars())
        assert _left_to_apply("node", versions) == []
    finally:
        other.close()
        await db.dispose()
