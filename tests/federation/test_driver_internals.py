"""The private parts of SQLAlchemy and aiosqlite the database layer relies on (issue 22).

`federation.prepared` drives SQLAlchemy's compiled statements by hand, `federation.database`
and `federation.sqlite_inline` stand in for aiosqlite under SQLAlchemy's adapter, and
`federation.bind_lookups` reads an Enum type's value table. pyproject.toml
bounds both packages from above; this test fails, naming the missing piece, when an
upgrade (or a raised bound) changes one of them, before any other test fails obscurely.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.sql.compiler import ExpandedState, SQLCompiler

_ROOT = Path(__file__).resolve().parents[2]
_WHAT = ("is used by federation/prepared.py, federation/database.py, federation/sqlite_inline.py, "
         "node/core/audit.py or node/core/audit_pg_append.py; check those before raising the "
         "upper bound in pyproject.toml")


def _need(ok: bool, package: str, thing: str) -> None:
    assert ok, f"{package} {version(package)}: {thing} changed or is gone; it {_WHAT}"


def _bound(name: str) -> str:
    deps = tomllib.loads((_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [spec] = [d for d in deps if re.match(rf"{name}\b", d)]
    upper = re.search(r"<\s*([\d.]+)", spec)
    assert upper, f"pyproject.toml must bound {name} from above ({spec!r}): {_WHAT}"
    return upper.group(1)


def _below(installed: str, upper: str) -> bool:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", v)[:3])
    return key(installed) < key(upper)


def test_installed_versions_are_within_the_bounds() -> None:
    for name in ("sqlalchemy", "aiosqlite"):
        upper = _bound(name)
        assert _below(version(name), upper), (
            f"{name} {version(name)} is outside pyproject.toml's bound <{upper}: {_WHAT}")


def test_sqlalchemy_compiler_internals_used_by_the_prepared_shortcut() -> None:
    t = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("n", sa.Integer, default=1))
    stmt = sa.select(t.c.id).where(t.c.id.in_(sa.bindparam("ids", expanding=True)))
    compiled = stmt.compile(dialect=sqlite.dialect(), column_keys=[], for_executemany=False)
    _need(isinstance(compiled, SQLCompiler), "sqlalchemy", "Select.compile(...) -> SQLCompiler")
    for attr in ("_bind_processors", "_result_columns", "positiontup", "post_compile_params",
                 "literal_execute_params", "effective_returning", "string"):
        _need(hasattr(compiled, attr), "sqlalchemy", f"SQLCompiler.{attr}")
    state = compiled.construct_expanded_state({"ids": [1, 2]})
    _need(isinstance(state, ExpandedState) and state.positiontup is not None
          and hasattr(state, "processors") and hasattr(state, "parameters"),
          "sqlalchemy", "SQLCompiler.construct_expanded_state -> ExpandedState")
    _need("_no_postcompile" in inspect.signature(compiled.construct_params).parameters,
          "sqlalchemy", "SQLCompiler.construct_params(_no_postcompile=)")
    column = compiled._result_columns[0]
    _need(len(column) >= 4 and hasattr(column[3], "_cached_result_processor"), "sqlalchemy",
          "SQLCompiler._result_columns entries (key, name, objects, type)")
    ins = sa.insert(t).compile(dialect=sqlite.dialect(), column_keys=["id"])
    _need(hasattr(ins, "insert_prefetch") and hasattr(ins, "implicit_returning"),
          "sqlalchemy", "SQLCompiler.insert_prefetch / implicit_returning")
    default = t.c.n.default
    _need(default is not None and default.is_scalar and default.arg == 1, "sqlalchemy",
          "ColumnDefault.is_scalar / .arg")
    _need("dialect" in inspect.signature(DBAPIError.instance).parameters, "sqlalchemy",
          "DBAPIError.instance(..., dialect=)")


def test_sqlalchemy_aiosqlite_adapter_internals() -> None:
    _need("async_creator" in inspect.signature(create_async_engine).parameters
          or "async_creator" in (create_async_engine.__doc__ or ""), "sqlalchemy",
          "create_async_engine(async_creator=)")
    init = inspect.signature(AsyncAdapt_aiosqlite_connection.__init__).parameters
    _need("connection" in init, "sqlalchemy", "AsyncAdapt_aiosqlite_connection(dbapi, connection)")
    src = inspect.getsource(AsyncAdapt_aiosqlite_connection)
    _need("isolation_level" in src and "_connection" in src, "sqlalchemy",
          "AsyncAdapt_aiosqlite_connection._connection / isolation_level")


def test_sqlalchemy_enum_value_table_used_by_the_bind_lookups() -> None:
    # federation/bind_lookups.py binds an Enum column through the type's own value table.
    import enum

    class Colour(enum.StrEnum):
        RED = "red"

    t = sa.Enum(Colour, values_callable=lambda e: [m.value for m in e])
    lookup = getattr(t, "_valid_lookup", None)
    _need(isinstance(lookup, dict) and lookup.get(Colour.RED) == "red"
          and lookup.get("red") == "red", "sqlalchemy",
          "Enum._valid_lookup (member or value -> stored string)")


def test_sqlalchemy_text_and_insert_internals_used_by_the_audit_and_insert_shapes() -> None:
    # node/core/audit_pg_append.py types a text() statement's parameters from another's
    # (`TextClause._bindparams`); federation.prepared.InsertShape names a named-parameter
    # dialect's binds in compiled order (`SQLCompiler.binds`).
    typed = sa.text("SELECT :a, :b").bindparams(sa.bindparam("a", type_=sa.LargeBinary),
                                                  sa.bindparam("b", type_=sa.BigInteger))
    binds = getattr(typed, "_bindparams", None)
    _need(isinstance(binds, dict) and set(binds) == {"a", "b"}
          and isinstance(binds["a"].type, sa.LargeBinary), "sqlalchemy",
          "TextClause._bindparams (name -> BindParameter)")
    again = sa.text("SELECT :b, :a").bindparams(*binds.values())  # type: ignore[union-attr]
    _need(isinstance(again.compile().binds["b"].type, sa.BigInteger), "sqlalchemy",
          "TextClause.bindparams(*BindParameter) keeps the types")
    t = sa.Table("t2", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("n", sa.Integer))
    ins = sa.insert(t).compile(column_keys=["id", "n"])  # default dialect: named parameters
    _need(list(getattr(ins, "binds", {})) == ["id", "n"], "sqlalchemy",
          "SQLCompiler.binds (in compiled order)")
