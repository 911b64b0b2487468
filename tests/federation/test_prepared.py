"""`federation.prepared`: a prepared statement gives the same rows, counts, stored values and
errors whether it runs straight on the inline SQLite driver or through SQLAlchemy, on both
engines; and the project's hot statements do take the shortcut on SQLite."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, MultipleResultsFound, NoResultFound

from federation.database import Database, make_engine
from federation.prepared import Prepared, RawResult
from node.activation import requester as requesting
from node.activation import views
from node.core.vocabulary import Role
from tests.activations.helpers import request_in
from tests.activations.netutil import actx, add_user, offer
from tests.federation.network import make_network
from tests.federation.prepared_statements import project_statements


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


_META = sa.MetaData()
_T = sa.Table(
    "prepared_items", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ref", sa.Uuid, nullable=False, unique=True),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("colour", sa.Enum(Colour, native_enum=False, length=8), nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=True),
)
_DEFAULTED = sa.Table(
    "prepared_defaulted", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("n", sa.Integer, nullable=False, default=7),  # Python-side default
)

_INSERT = sa.insert(_T)
_BY_NAMES = (
    sa.select(_T)
    .where(_T.c.name.in_(sa.bindparam("b_names", expanding=True)))
    .order_by(_T.c.id)
    .limit(sa.bindparam("b_limit"))
)
_BY_REF = sa.select(_T.c.id, _T.c.colour, _T.c.ref).where(_T.c.ref == sa.bindparam("b_ref"))
_MOVE = sa.update(_T).where(_T.c.id == sa.bindparam("b_id"),
                            _T.c.colour == sa.bindparam("b_from"))
_BUMP = (
    sa.update(_T)
    .where(_T.c.id.in_(sa.bindparam("b_ids", expanding=True)))
    .values(n=_T.c.n + 1,
            blob=sa.func.coalesce(_T.c.blob, sa.bindparam("b_blob", type_=sa.LargeBinary)))
)
_SET_N = sa.update(_T).where(_T.c.id == sa.bindparam("b_id")).values(n=sa.bindparam("b_n"))


def _row(i: int, colour: Colour = Colour.RED) -> dict[str, Any]:
    return {"ref": uuid.UUID(int=i), "name": f"item-{i}", "colour": colour, "n": 2**40 + i,
            "blob": None if i % 2 else bytes([i])}


async def _scenario(db: Database, run: Any) -> list[Any]:
    """The same steps, each statement through `run(conn, stmt, params)`; what each answered."""
    seen: list[Any] = []
    async with db.write() as conn:
        seen.append((await run(conn, _INSERT, _row(1))).rowcount)
        seen.append((await run(conn, _INSERT, [_row(i, Colour.BLUE) for i in (2, 3, 4)])).rowcount)
        rows = (await run(conn, _BY_NAMES, {"b_names": ["item-1", "item-3", "item-4"],
                                             "b_limit": 2})).all()
        seen.append([tuple(r) for r in rows])
        seen.append([(r.id, r.ref, r.colour, r.n, r.blob) for r in rows])
        one = (await run(conn, _BY_REF, {"b_ref": uuid.UUID(int=3)})).one()
        seen.append((one.id, one.colour, one.ref))
        seen.append((await run(conn, _BY_REF, {"b_ref": uuid.UUID(int=99)})).first())
        # SET taken from the parameters' column names; a conditional move that matches no row
        moved = await run(conn, _MOVE, {"b_id": 2, "b_from": Colour.BLUE, "colour": Colour.RED,
                                        "name": "moved"})
        missed = await run(conn, _MOVE, {"b_id": 1, "b_from": Colour.BLUE, "colour": Colour.RED})
        seen.append((moved.rowcount, missed.rowcount))
        seen.append((await run(conn, _BUMP, {"b_ids": [1, 2, 3], "b_blob": b"x"})).rowcount)
        seen.append((await run(conn, _SET_N, [{"b_id": 1, "b_n": 5}, {"b_id": 4, "b_n": 6}])
                     ).rowcount)
    async with db.read() as conn:
        seen.append([tuple(r) for r in (await conn.execute(sa.select(_T).order_by(_T.c.id)))])
    return seen


async def _fresh(url: str) -> Database:
    db = Database(make_engine(url))
    async with db.write() as conn:
        await conn.run_sync(_META.create_all)
    return db


async def _prepared_run(conn: Any, stmt: Any, params: Any) -> Any:
    return await Prepared(stmt).run(conn, params)


async def _sqlalchemy_run(conn: Any, stmt: Any, params: Any) -> Any:
    return await conn.execute(stmt, params)


@pytest.fixture
async def two_dbs(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    first = await _fresh(db_url)
    if db_url.startswith("sqlite"):
        second = await _fresh(f"sqlite:///{tmp_path / 'second.db'}")
    else:
        # The same (empty) PostgreSQL database, after the first run's rows are gone.
        second = first
    yield first, second
    await first.dispose()
    if second is not first:
        await second.dispose()


async def test_same_answers_and_same_stored_values_as_sqlalchemy(
    two_dbs: tuple[Database, Database]
) -> None:
    first, second = two_dbs
    via_prepared = await _scenario(first, _prepared_run)
    if second is first:
        async with first.write() as conn:
            await conn.execute(sa.delete(_T))
            if first.engine.dialect.name == "postgresql":
                await conn.execute(sa.text("ALTER SEQUENCE prepared_items_id_seq RESTART"))
    via_sqlalchemy = await _scenario(second, _sqlalchemy_run)
    assert via_prepared == via_sqlalchemy
    assert via_prepared[0] == 1 and via_prepared[6] == (1, 0) and via_prepared[7] == 3
    assert via_prepared[3][0][2] is Colour.RED  # result processors applied (the Enum)
    assert via_prepared[3][0][1] == uuid.UUID(int=1)
    if first.engine.dialect.name == "sqlite":  # asyncpg reports no executemany rowcount
        assert via_prepared[1] == 3 and via_prepared[8] == 2


async def test_the_inline_write_connection_takes_the_shortcut_and_nothing_else(
    sqlite_url: str,
) -> None:
    db = await _fresh(sqlite_url)
    try:
        stmt = Prepared(_BY_REF)
        async with db.write() as conn:
            await conn.execute(_INSERT, _row(5))
            assert isinstance(await stmt.run(conn, {"b_ref": uuid.UUID(int=5)}), RawResult)
        async with db.read() as conn:  # the threaded read engine
            res = await stmt.run(conn, {"b_ref": uuid.UUID(int=5)})
            assert not isinstance(res, RawResult) and res.one().colour is Colour.RED
        async with db.sessions() as session:
            res = await stmt.run(session, {"b_ref": uuid.UUID(int=5)})
            assert not isinstance(res, RawResult) and res.one().id == 1
    finally:
        await db.dispose()


async def test_python_side_defaults_take_the_sqlalchemy_path(db_url: str) -> None:
    db = await _fresh(db_url)
    try:
        stmt = Prepared(sa.insert(_DEFAULTED))
        async with db.write() as conn:
            res = await stmt.run(conn, {"name": "a"})
            assert not isinstance(res, RawResult)
            await stmt.run(conn, [{"name": "b"}, {"name": "c"}])
            await stmt.run(conn, {"name": "d", "n": 1})
        async with db.read() as conn:
            got = (await conn.execute(sa.select(_DEFAULTED.c.name, _DEFAULTED.c.n)
                                      .order_by(_DEFAULTED.c.id))).all()
        assert [tuple(r) for r in got] == [("a", 7), ("b", 7), ("c", 7), ("d", 1)]
    finally:
        await db.dispose()


async def test_a_refused_statement_raises_as_sqlalchemy_and_changes_nothing(db_url: str) -> None:
    db = await _fresh(db_url)
    try:
        insert = Prepared(_INSERT)
        async with db.write() as conn:
            await insert.run(conn, _row(1))
        with pytest.raises(IntegrityError):
            async with db.write() as conn:
                await insert.run(conn, _row(2))
                await insert.run(conn, {**_row(3), "ref": uuid.UUID(int=1)})  # UNIQUE(ref)
        with pytest.raises(IntegrityError):
            async with db.write() as conn:
                await insert.run(conn, [_row(4), {**_row(5), "name": None}])  # NOT NULL
        by_ref = Prepared(_BY_REF)
        async with db.write() as conn:
            with pytest.raises(NoResultFound):
                (await by_ref.run(conn, {"b_ref": uuid.UUID(int=2)})).one()
            await insert.run(conn, _row(6))
            both = Prepared(sa.select(_T.c.id).order_by(_T.c.id))
            with pytest.raises(MultipleResultsFound):
                (await both.run(conn)).one()
            assert (await both.run(conn)).scalar() == 1
        async with db.read() as conn:
            names = (await conn.execute(sa.select(_T.c.name).order_by(_T.c.id))).scalars().all()
        assert names == ["item-1", "item-6"]
    finally:
        await db.dispose()


def _project_statements() -> list[Prepared]:
    # Found in the source, not listed by hand: a new module's statements are covered too.
    found = list(project_statements().values())
    assert len(found) >= 20
    return found


async def test_the_federation_hot_path_runs_every_statement_on_the_shortcut(
    tmp_path: Path,
) -> None:
    statements = _project_statements()
    for p in statements:
        p.clear_plans()
    net = await make_network(4, tmp_path=tmp_path)
    try:
        a, b, c = (net.node(f"agency-{i}") for i in (1, 2, 3))
        coord, _ = await add_user(a, "coord", Role.COORDINATOR)
        async with a.db.write() as conn:
            act = await requesting.create_request(
                conn, actx(a), request_in(["agency-2", "agency-3"]), user_id=coord
            )
        await net.settle()
        await offer(b, act.activation_id, "agency-1", {"fire": 2})
        await offer(c, act.activation_id, "agency-1", {"ems": 1})
        await net.settle()
        view = await svc_view(a, act.activation_id)
        assert sorted(leg.state.value for leg in view.legs) == ["offered", "offered"]
    finally:
        await net.close()
    shapes = {(str(p.stmt).split()[0], k): ok for p in statements
              for k, ok in p.compiled_shapes().items()}
    assert len(shapes) >= 15
    assert all(shapes.values()), [k for k, ok in shapes.items() if not ok]


async def svc_view(node: Any, aid: str) -> Any:
    async with node.db.read() as conn:
        return await views.get(conn, actx(node), aid, None)


async def test_the_shortcut_result_offers_what_callers_use_or_refuses_loudly(
    db_url: str,
) -> None:
    db = await _fresh(db_url)
    try:
        insert, by_names = Prepared(_INSERT), Prepared(_BY_NAMES)
        params = {"b_names": ["item-1", "item-2"], "b_limit": 5}
        async with db.write() as conn:
            await insert.run(conn, [_row(1), _row(2)])
            got = await by_names.run(conn, params)
            want = await conn.execute(_BY_NAMES, params)
            assert [dict(m) for m in got.mappings().all()] == [
                dict(m) for m in want.mappings().all()]
            got, want = await by_names.run(conn, params), await conn.execute(_BY_NAMES, params)
            assert list(got.scalars()) == list(want.scalars()) == [1, 2]
            one = {"b_ref": uuid.UUID(int=2)}
            assert (await Prepared(_BY_REF).run(conn, one)).scalar_one() == 2
            assert (await Prepared(_BY_REF).run(conn, {"b_ref": uuid.UUID(int=9)})
                    ).scalar_one_or_none() is None
            with pytest.raises(MultipleResultsFound):
                (await by_names.run(conn, params)).scalar_one()
            res = await by_names.run(conn, params)
            if isinstance(res, RawResult):  # SQLite: the shortcut names what it lacks
                with pytest.raises(AttributeError, match="does not offer 'partitions'"):
                    res.partitions()
    finally:
        await db.dispose()
