"""The encounter fast writer (`node.core.audit.record` on SQLite: group commit on the driver
thread) against the ordinary write path (`append` inside `db.write()`): the same stored rows
for a table with column defaults, and the same exception type for a failed write whatever
the size of its group. On PostgreSQL both calls take the ordinary path (the same answers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from federation.database import make_engine, migrate
from node.core import audit
from node.core.db import AuditEntry, AuditHead, Database, table_of

_META = sa.MetaData()
# A table whose later-added columns carry defaults: a Python-side one and a server one.
_ITEMS = sa.Table(
    "fast_items", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(20), nullable=False),
    sa.Column("note", sa.String(20), nullable=True),
    sa.Column("added_py", sa.Integer, nullable=False, default=7),
    sa.Column("added_fn", sa.String(10), nullable=False, default=lambda: "made"),
    sa.Column("added_srv", sa.Integer, nullable=False, server_default=sa.text("5")),
)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(make_engine(db_url))
    await migrate(database.engine, "node:migrations")
    async with database.write() as conn:
        await conn.run_sync(_META.create_all)
    yield database
    await database.dispose()


async def _slow(db: Database, values: dict[str, Any]) -> None:
    async with db.write() as conn:
        await audit.append(conn, ts=1, rows=[(_ITEMS, values)], action="item.slow")


async def _fast(db: Database, values: dict[str, Any]) -> None:
    await audit.record(db, rows=[(_ITEMS, values)], ts=1, action="item.fast")


async def _stored(db: Database) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(_ITEMS).order_by(_ITEMS.c.id))).all()
    return [tuple(r)[1:] for r in rows]


async def _chain_is_linear(db: Database) -> None:
    log, head = table_of(AuditEntry), table_of(AuditHead)
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(log.c.seq, log.c.prev_hash, log.c.hash)
                                   .order_by(log.c.seq))).all()
        top = (await conn.execute(sa.select(head.c.seq, head.c.hash))).one()
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert (top.seq, top.hash) == (rows[-1].seq, rows[-1].hash)


async def test_both_paths_store_the_same_defaults(db: Database) -> None:
    await _slow(db, {"id": 1, "name": "warm"})  # warms the head cache: next is the fast way
    shapes = [{"name": "a"}, {"name": "b", "note": "n", "added_py": 1},
              {"name": "c", "note": None, "added_srv": 9}]
    for i, values in enumerate(shapes):
        await _fast(db, {"id": 10 + i, **values})
        await _slow(db, {"id": 20 + i, **values})
    stored = await _stored(db)
    fast, slow = stored[1:4], stored[4:7]
    assert fast == slow
    assert fast[0] == ("a", None, 7, "made", 5)
    assert fast[2] == ("c", None, 7, "made", 9)
    await _chain_is_linear(db)


async def test_a_failed_write_raises_the_same_type_alone_or_in_a_group(db: Database) -> None:
    await _slow(db, {"id": 1, "name": "warm"})
    with pytest.raises(IntegrityError):  # alone in its group
        await _fast(db, {"id": 2, "name": None})
    await _fast(db, {"id": 3, "name": "ok"})  # the head cache survives a failed write
    # In a group with others: the bad one fails the same way, the others are stored.
    results = await asyncio.gather(
        *[_fast(db, {"id": 10 + i, "name": None if i == 2 else f"g{i}"}) for i in range(6)],
        return_exceptions=True)
    assert [type(r).__name__ for r in results] == [
        "NoneType", "NoneType", "IntegrityError", "NoneType", "NoneType", "NoneType"]
    assert [r[0] for r in await _stored(db)] == ["warm", "ok", "g0", "g1", "g3", "g4", "g5"]
    await _chain_is_linear(db)
