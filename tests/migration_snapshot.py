"""Migrated schemas replayed instead of re-running Alembic on every fresh test database.

Almost every test starts a node, hub or helper on an empty database, and each start runs
every migration of its package (`federation.database.migrate`): about a quarter of the
suite's CPU went into upgrading identical empty databases to the same heads. Inside a pytest
process, `install()` wraps `federation.database._upgrade` so that an upgrade to "heads" of a
database holding nothing at all replays a snapshot of the result instead:

- SQLite: the first such upgrade per package runs Alembic for real and, in the same
  transaction, reads back what it built (`sqlite_master` in creation order, every table's
  rows, `user_version`); later ones execute those statements and inserts (tables, rows,
  then indexes, views and triggers, so no trigger fires during the replay).
- PostgreSQL: a scratch database on the same server is migrated for real once per package
  and dumped with `pg_dump` (rows as INSERTs); later upgrades run that script in their own
  upgrade transaction (session settings made transaction-local).

A snapshot is keyed by the package's migration files (names, sizes, mtimes), so a migration
added or edited while the suite runs is picked up. Anything else (another revision, a
database already holding tables, tests that test migrations: marker `real_migrations`, set
by tests/conftest.py on modules that mention migrations) runs Alembic as before, as do
servers in child processes. PEERNET_TEST_REAL_MIGRATIONS=1 turns the replay off.
tests/test_migration_snapshot.py checks that a replayed database equals a migrated one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.util import await_only

import federation.database as fdb
from peernet.throwaway_pg import create_database, drop_database, pg_dump_sql

Upgrade = Callable[[Connection, str, str], None]

_real_upgrade: Upgrade | None = None
_enabled = threading.local()  # .off: real migrations in this thread
_lock = threading.Lock()
_sqlite: dict[tuple[str, tuple[Any, ...]], _SqliteSnapshot] = {}
_pg: dict[tuple[str, tuple[Any, ...]], str] = {}
_disabled_for_test = False


@dataclass(frozen=True)
class _SqliteSnapshot:
    tables: list[str]  # CREATE TABLE statements, creation order
    rows: list[tuple[str, list[str], list[tuple[Any, ...]]]]  # table, columns, rows
    later: list[str]  # indexes, views, triggers
    user_version: int


def _fingerprint(script_location: str) -> tuple[Any, ...]:
    pkg = script_location.split(":", 1)[0]
    root = importlib.resources.files(pkg) / "migrations"
    out: list[tuple[str, int, int]] = []
    for sub in (root, root / "versions"):
        path = os.fspath(str(sub))
        for name in sorted(os.listdir(path)):
            if name.endswith(".py"):
                st = os.stat(os.path.join(path, name))
                out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


@contextlib.contextmanager
def real_migrations() -> Iterator[None]:
    """Run real migrations in this block (this thread)."""
    was = getattr(_enabled, "off", False)
    _enabled.off = True
    try:
        yield
    finally:
        _enabled.off = was


def set_test_real(flag: bool) -> None:
    global _disabled_for_test
    _disabled_for_test = flag


def _sqlite_empty(conn: Connection) -> bool:
    return conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one() == 0


def _pg_empty(conn: Connection) -> bool:
    n = conn.exec_driver_sql(
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        "        WHERE n.nspname = 'public')"
        " + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        "    WHERE n.nspname = 'public')"
        " + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
        "    WHERE n.nspname = 'public')"
        " + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')"
    ).scalar_one()
    return int(n) == 0


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def capture_sqlite(conn: Connection) -> _SqliteSnapshot:
    objs = conn.exec_driver_sql(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    ).all()
    tables = [sql for kind, name, sql in objs
              if kind == "table" and not name.startswith("sqlite_")]
    later = [sql for kind, _, sql in objs if kind in ("index", "view", "trigger")]
    rows = []
    names = [name for kind, name, _ in objs if kind == "table"]
    if conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'").scalar_one():
        names.append("sqlite_sequence")
    for name in names:
        result = conn.exec_driver_sql(f"SELECT * FROM {_q(name)}")
        cols = list(result.keys())
        data = [tuple(r) for r in result.all()]
        if data:
            rows.append((name, cols, data))
    version = int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
    return _SqliteSnapshot(tables, rows, later, version)


def _replay_sqlite(conn: Connection, snap: _SqliteSnapshot) -> None:
    for sql in snap.tables:
        conn.exec_driver_sql(sql)
    for name, cols, data in snap.rows:
        marks = ", ".join("?" for _ in cols)
        conn.exec_driver_sql(
            f"INSERT INTO {_q(name)} ({', '.join(_q(c) for c in cols)}) VALUES ({marks})",
            data)
    for sql in snap.later:
        conn.exec_driver_sql(sql)
    if snap.user_version:
        conn.exec_driver_sql(f"PRAGMA user_version = {snap.user_version}")


_SET = re.compile(r"^SET (\w+) = ", re.M)


def pg_replay_script(dump: str) -> str:
    """A pg_dump script made runnable inside another transaction: no psql meta-commands,
    no comments, every setting local to the transaction."""
    lines = [ln for ln in dump.splitlines()
             if not ln.startswith("\\") and not ln.startswith("--")]
    script = "\n".join(lines)
    script = _SET.sub(r"SET LOCAL \1 = ", script)
    return script.replace("set_config('search_path', '', false)",
                          "set_config('search_path', '', true)")


async def _pg_snapshot(url: str, script_location: str) -> str:
    from sqlalchemy.engine import make_url

    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    name = "snap_" + uuid.uuid4().hex[:12]
    scratch = await create_database(admin, name)
    try:
        engine = fdb.make_engine(scratch)
        try:
            await fdb.migrate(engine, script_location)
        finally:
            await engine.dispose()
        dump = await asyncio.to_thread(pg_dump_sql, scratch)
    finally:
        await drop_database(admin, name)
    return pg_replay_script(dump)


def _build_pg(url: str, script_location: str) -> str:
    """Run `_pg_snapshot` on a thread of its own (the caller is inside a running loop)."""
    out: list[str] = []
    err: list[BaseException] = []

    def work() -> None:
        with real_migrations():
            try:
                out.append(asyncio.run(_pg_snapshot(url, script_location)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                err.append(exc)

    t = threading.Thread(target=work, name="pg-migration-snapshot")
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


def _upgrade(conn: Connection, script_location: str, revision: str) -> None:
    assert _real_upgrade is not None
    if (revision != "heads" or _disabled_for_test or getattr(_enabled, "off", False)
            or os.environ.get("PEERNET_TEST_REAL_MIGRATIONS")):
        return _real_upgrade(conn, script_location, revision)
    dialect = conn.dialect.name
    if dialect == "sqlite":
        if not _sqlite_empty(conn):
            return _real_upgrade(conn, script_location, revision)
        key = (script_location, _fingerprint(script_location))
        snap = _sqlite.get(key)
        if snap is None:
            _real_upgrade(conn, script_location, revision)
            _sqlite[key] = capture_sqlite(conn)
            return None
        _replay_sqlite(conn, snap)
        return None
    if dialect == "postgresql":
        if not _pg_empty(conn):
            return _real_upgrade(conn, script_location, revision)
        key = (script_location, _fingerprint(script_location))
        script = _pg.get(key)
        if script is None:
            with _lock:
                script = _pg.get(key)
                if script is None:
                    url = conn.engine.url.render_as_string(hide_password=False)
                    script = _pg[key] = _build_pg(url, script_location)
        driver = conn.connection.driver_connection
        await_only(driver.execute(script))
        return None
    return _real_upgrade(conn, script_location, revision)


def install() -> None:
    """Wrap `federation.database._upgrade` in this process (idempotent)."""
    global _real_upgrade
    if _real_upgrade is None:
        _real_upgrade = fdb._upgrade
        fdb._upgrade = _upgrade
