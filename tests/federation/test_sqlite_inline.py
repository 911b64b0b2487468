"""The inline SQLite write engine (`federation.sqlite_inline`, `Database.write_engine`).

Writes on a SQLite file run on the event loop's thread; reads stay on aiosqlite's thread;
both see the same committed data, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from federation.database import Database, make_engine
from federation.sqlite_inline import InlineConnection, inline_creator

_META = sa.MetaData()
_ITEMS = sa.Table(
    "items", _META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String, nullable=False, unique=True),
)


async def _database(url: str) -> Database:
    db = Database(make_engine(url))
    async with db.write() as conn:
        await conn.run_sync(_META.create_all)
    return db


@pytest.fixture
async def file_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await _database(f"sqlite:///{tmp_path / 'inline.db'}")
    yield db
    await db.dispose()


async def test_writes_run_on_the_loop_thread_and_reads_do_not(file_db: Database) -> None:
    assert file_db.write_engine is not file_db.engine
    loop_thread = threading.get_ident()
    # The pysqlite connection under the write engine is the inline one.
    async with file_db.write() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, InlineConnection)
    # A function evaluated by SQLite itself reports the thread that runs the statement.
    on_thread: list[int] = []

    async with file_db.write() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.create_function(
            "whoami", 0, lambda: on_thread.append(threading.get_ident()) or 1)
        await conn.execute(sa.text("INSERT INTO items (name) VALUES ('a') RETURNING whoami()"))
    assert on_thread == [loop_thread]

    read_on: list[int] = []
    async with file_db.read() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.create_function(
            "whoami", 0, lambda: read_on.append(threading.get_ident()) or 1)
        names = (await conn.execute(sa.text("SELECT name FROM items WHERE whoami()"))
                 ).scalars().all()
    assert names == ["a"]  # the threaded reader sees the inline writer's commit
    assert read_on and all(t != loop_thread for t in read_on)


async def test_a_refused_write_surfaces_and_changes_nothing(file_db: Database) -> None:
    async with file_db.write() as conn:
        await conn.execute(_ITEMS.insert(), [{"name": "kept"}, {"name": "also kept"}])
    with pytest.raises(IntegrityError):
        async with file_db.write() as conn:
            await conn.execute(_ITEMS.insert(), {"name": "new in the failed transaction"})
            await conn.execute(_ITEMS.insert(), {"name": "kept"})  # UNIQUE violated
    async with file_db.read() as conn:
        names = sorted((await conn.execute(sa.select(_ITEMS.c.name))).scalars().all())
    assert names == ["also kept", "kept"]
    # The writer lock was released and the engine still writes.
    async with file_db.write() as conn:
        await conn.execute(_ITEMS.insert(), {"name": "after"})
    async with file_db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(_ITEMS))
                ).scalar_one() == 3


async def test_savepoint_rollback_keeps_the_outer_transaction(file_db: Database) -> None:
    async with file_db.write() as conn:
        await conn.execute(_ITEMS.insert(), {"name": "outer"})
        with pytest.raises(IntegrityError):
            async with conn.begin_nested():
                await conn.execute(_ITEMS.insert(), {"name": "inner"})
                await conn.execute(_ITEMS.insert(), {"name": "outer"})
        await conn.execute(_ITEMS.insert(), {"name": "after savepoint"})
    async with file_db.read() as conn:
        names = sorted((await conn.execute(sa.select(_ITEMS.c.name))).scalars().all())
    assert names == ["after savepoint", "outer"]


async def test_concurrent_writers_queue_and_all_commit(file_db: Database) -> None:
    async def one(i: int) -> None:
        async with file_db.write() as conn:
            await conn.execute(_ITEMS.insert(), {"name": f"n{i}"})
            await asyncio.sleep(0)  # yield inside the transaction: others must wait

    await asyncio.gather(*(one(i) for i in range(40)))
    async with file_db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(_ITEMS))
                ).scalar_one() == 40


async def test_pragmas_apply_to_inline_connections(file_db: Database) -> None:
    async with file_db.write() as conn:
        mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
    assert (mode, fks) == ("wal", 1)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
async def test_in_memory_databases_keep_one_engine(url: str) -> None:
    db = await _database(url)
    try:
        assert db.write_engine is db.engine
    finally:
        await db.dispose()


async def test_closed_connection_refuses_further_use(tmp_path: Path) -> None:
    conn = await inline_creator(str(tmp_path / "c.db"))()
    await conn.execute("CREATE TABLE t (x)")
    await conn.close()
    await conn.close()  # idempotent
    with pytest.raises(sqlite3.ProgrammingError):
        await conn.execute("SELECT 1")
