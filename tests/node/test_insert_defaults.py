"""Issue 22 item 2: columns added to a table later, with defaults, get the same value
whichever path writes the row: the ordinary write path (`append` in `db.write()`, plain
SQLAlchemy), the encounter fast writer (SQLite) and the group commit (PostgreSQL), because
the raw writers insert through the prepared layer's `insert_shape` (SQLAlchemy's compiled
INSERT, bind processors and Python-side defaults, including one that reads the row)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from federation.database import make_engine, migrate
from federation.prepared import insert_shape
from node.core import audit
from node.core.db import Database

_META = sa.MetaData()
_BEFORE = sa.MetaData()
sa.Table("later_items", _BEFORE,
         sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
         sa.Column("name", sa.String(20), nullable=False))
# The same table once a release added three columns with defaults.
_ITEMS = sa.Table(
    "later_items", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(20), nullable=False),
    sa.Column("added_py", sa.Integer, nullable=False, default=7),
    sa.Column("added_row", sa.String(30), nullable=False,
              default=lambda ctx: ctx.get_current_parameters()["name"] + "-tag"),
    sa.Column("added_srv", sa.Integer, nullable=False, server_default=sa.text("5")),
)
_ADD = ["ALTER TABLE later_items ADD COLUMN added_py INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE later_items ADD COLUMN added_row VARCHAR(30) NOT NULL DEFAULT ''",
        "ALTER TABLE later_items ADD COLUMN added_srv INTEGER NOT NULL DEFAULT 5"]


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(make_engine(db_url))
    await migrate(database.engine, "node:migrations")
    async with database.write() as conn:
        await conn.run_sync(_BEFORE.create_all)
        await conn.execute(sa.insert(_BEFORE.tables["later_items"]), [{"id": 0, "name": "old"}])
        for statement in _ADD:
            await conn.exec_driver_sql(statement)
    yield database
    await database.dispose()


async def _slow(db: Database, values: dict[str, Any]) -> None:
    async with db.write() as conn:
        await audit.append(conn, ts=1, rows=[(_ITEMS, values)], action="item.slow")


async def _fast(db: Database, values: dict[str, Any]) -> None:
    await audit.record(db, rows=[(_ITEMS, values)], ts=1, action="item.fast")


async def test_a_column_added_with_a_default_gets_the_same_value_on_every_path(
    db: Database
) -> None:
    await _slow(db, {"id": 1, "name": "warm"})  # SQLite: the next writes take the fast way
    for i, values in enumerate([{"name": "a"}, {"name": "b", "added_py": 1},
                                {"name": "c", "added_srv": 9, "added_row": "given"}]):
        await _fast(db, {"id": 10 + i, **values})
        await _slow(db, {"id": 20 + i, **values})
    async with db.read() as conn:
        rows = {r.id: tuple(r)[1:] for r in await conn.execute(sa.select(_ITEMS))}
    assert rows[0] == ("old", 0, "", 5)  # written before the columns existed
    for i in range(3):
        assert rows[10 + i] == rows[20 + i]
    assert rows[10] == ("a", 7, "a-tag", 5)
    assert rows[11] == ("b", 1, "b-tag", 5)
    assert rows[12] == ("c", 7, "given", 9)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()],
                         ids=["sqlite", "postgresql"])
def test_the_shape_is_the_statement_sqlalchemy_compiles(dialect: Any) -> None:
    shape = insert_shape(_ITEMS, frozenset({"id", "name"}), dialect)
    compiled = sa.insert(_ITEMS).compile(dialect=dialect, column_keys=["id", "name"])
    assert shape.sql == compiled.string
    assert [c.name for c in shape.columns] == ["id", "name", "added_py", "added_row"]
    assert shape.params({"id": 3, "name": "x"}) == [3, "x", 7, "x-tag"]
    with pytest.raises(KeyError):  # a column the shape needs and the row lacks
        shape.params({"id": 3})
