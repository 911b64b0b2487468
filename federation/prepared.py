"""Prebuilt statements for the federation hot path, run straight on the inline SQLite driver.

Each execution through `AsyncConnection.execute` costs SQLAlchemy's whole per-statement
machinery (a greenlet hop, an execution context, parameter processing, a result proxy):
about 50 us of CPU against 10-60 us for the statement itself in SQLite. A message that
crosses a node runs about twenty such statements, so on a burst (a fan-out to fifty
agencies) that overhead was the largest single cost after the crypto.

`Prepared(stmt).run(db, params)` compiles `stmt` once per parameter shape and, inside a write
transaction on the inline SQLite connection (`federation.sqlite_inline`), executes the
compiled SQL on the sqlite3 cursor itself: the same SQL text, the same bound values (through
the dialect's own bind and result processors), in the same transaction. Anywhere else
(PostgreSQL, the threaded read engine, a session) it is exactly `db.execute(stmt, params)`.
Statements the shortcut cannot reproduce (Python-side column defaults, RETURNING, unnamed
result columns) always take the SQLAlchemy path. `tests/federation/test_prepared_differential.py`
runs every prepared statement of the hot path both ways, at the same state, on SQLite and
PostgreSQL, and compares rows, returned values and counts.
"""

from __future__ import annotations

import collections
import functools
import keyword
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import MultipleResultsFound, NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

from federation.bind_lookups import fast_processor
from federation.sqlite_inline import InlineConnection
from federation.sqlite_lock import write_error

__all__ = ["InsertShape", "Prepared", "RawResult", "inline_cursor_of", "insert_shape",
           "many_rows_sql"]

Db = AsyncConnection | AsyncSession
Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_Proc = Callable[[Any], Any] | None


def inline_cursor_of(db: Db) -> sqlite3.Cursor | None:
    """A cursor on `db`'s sqlite3 connection when `db` is a connection of the inline write
    engine inside a transaction; None otherwise."""
    if not isinstance(db, AsyncConnection):
        return None
    sync = db.sync_connection
    if sync is None or sync.closed or not sync.in_transaction():
        return None
    driver = sync.connection.driver_connection
    if not isinstance(driver, InlineConnection) or driver._connection is None:
        return None
    return driver._connection.cursor()


class RawResult:
    """The part of SQLAlchemy's `Result` the callers use, over rows already fetched; any
    other attribute raises `AttributeError` naming what to do instead."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list[Any]:
        return self._rows

    fetchall = all

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def one(self) -> Any:
        return _one(self._rows)

    def one_or_none(self) -> Any:
        return self.one() if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        return self.scalar_one() if self._rows else None

    def scalars(self) -> _Rows:
        return _Rows([r[0] for r in self._rows])

    def mappings(self) -> _Rows:
        return _Rows([r._asdict() for r in self._rows])

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"the prepared shortcut's result does not offer {name!r}: use all(), first(), "
            f"one(), one_or_none(), scalar(), scalar_one(), scalars(), mappings() or "
            f"rowcount, or run the statement through SQLAlchemy (federation.prepared)")


class _Rows:
    """`RawResult.scalars()` / `.mappings()`: the same accessors over single values or dicts."""

    __slots__ = ("_items",)

    def __init__(self, items: list[Any]) -> None:
        self._items = items

    def all(self) -> list[Any]:
        return self._items

    def first(self) -> Any:
        return self._items[0] if self._items else None

    def one(self) -> Any:
        return _one(self._items)

    def one_or_none(self) -> Any:
        return self.one() if self._items else None

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)


def _one(rows: list[Any]) -> Any:
    if not rows:
        raise NoResultFound("No row was found when one was required")
    if len(rows) > 1:
        raise MultipleResultsFound("Multiple rows were found when exactly one was required")
    return rows[0]


class _Plan:
    """One compiled form of a statement (for one set of parameter names)."""

    __slots__ = ("compiled", "expanding", "sql", "names", "procs", "row_type", "row_procs")

    def __init__(self, compiled: SQLCompiler) -> None:
        self.compiled = compiled
        # IN lists (`expanding` bind parameters) are rendered per execution.
        self.expanding = bool(compiled.post_compile_params or compiled.literal_execute_params)
        self.sql = compiled.string
        self.names: Sequence[str] = list(compiled.positiontup or ())
        processors = compiled._bind_processors
        self.procs: list[_Proc] = [processors.get(n) for n in self.names]  # type: ignore[misc]
        self.row_type: Callable[..., Any] | None = None
        self.row_procs: list[_Proc] = []
        columns = compiled._result_columns
        if columns:
            keys = [c[0] for c in columns]
            self.row_type = collections.namedtuple("Row", keys)  # type: ignore[misc]
            self.row_procs = [
                c[3]._cached_result_processor(compiled.dialect, None) for c in columns
            ]

    def args(self, params: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        if self.expanding:
            state = self.compiled.construct_expanded_state(dict(params))
            names = state.positiontup or ()
            procs = state.processors
            values = state.parameters
            return state.statement, tuple(
                procs[n](values[n]) if n in procs else values[n] for n in names
            )
        values = self.compiled.construct_params(dict(params), _no_postcompile=True)
        return self.sql, tuple(
            p(values[n]) if p is not None else values[n]
            for n, p in zip(self.names, self.procs, strict=True)
        )

    def rows(self, cursor: sqlite3.Cursor) -> list[Any]:
        row_type = self.row_type
        if row_type is None:
            return []
        fetched = cursor.fetchall()
        procs = self.row_procs
        if not any(procs):
            return [row_type(*r) for r in fetched]
        return [
            row_type(*(p(v) if p is not None else v for p, v in zip(procs, r, strict=True)))
            for r in fetched
        ]


def _usable(compiled: SQLCompiler) -> bool:
    if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
        return False  # Python-side defaults: SQLAlchemy computes them per execution
    if getattr(compiled, "implicit_returning", None) or compiled.effective_returning:
        return False
    keys = [c[0] for c in compiled._result_columns]
    return all(k.isidentifier() and not keyword.iskeyword(k) and not k.startswith("_")
               for k in keys) and len(set(keys)) == len(keys)


class Prepared:
    """A statement built once; see the module notes."""

    __slots__ = ("stmt", "_plans")

    def __init__(self, stmt: Executable) -> None:
        self.stmt = stmt
        self._plans: dict[tuple[str, ...], _Plan | None] = {}

    def compiled_shapes(self) -> dict[tuple[str, ...], bool]:
        """For each parameter shape compiled so far (SQLite only): whether it runs on the
        shortcut (False: it always goes through SQLAlchemy)."""
        return {k: v is not None for k, v in self._plans.items()}

    def clear_plans(self) -> None:
        self._plans.clear()

    def _plan(self, dialect: Dialect, keys: tuple[str, ...], many: bool) -> _Plan | None:
        plan_key = (*keys, "*many" if many else "")
        try:
            return self._plans[plan_key]
        except KeyError:
            pass
        compiled = self.stmt.compile(  # type: ignore[attr-defined]
            dialect=dialect, column_keys=list(keys), for_executemany=many
        )
        plan = _Plan(compiled) if isinstance(compiled, SQLCompiler) and _usable(compiled) else None
        self._plans[plan_key] = plan
        return plan

    async def run(self, db: Db, params: Params = None) -> Any:
        """Execute in `db`'s transaction; a `RawResult` on the inline SQLite path, else
        SQLAlchemy's `Result`."""
        cursor = inline_cursor_of(db)
        if cursor is None:
            return await db.execute(self.stmt, params)
        try:
            return await self._run_inline(db, cursor, params)
        except sqlite3.Error as exc:
            # As SQLAlchemy reports it (callers catch `IntegrityError` and the like).
            raise write_error(exc, db.dialect) from exc  # type: ignore[union-attr]
        finally:
            cursor.close()

    async def _run_inline(self, db: Db, cursor: sqlite3.Cursor, params: Params) -> Any:
        assert isinstance(db, AsyncConnection)
        sets: Sequence[Mapping[str, Any]]
        if isinstance(params, Mapping) or params is None:
            sets = [params or {}]
        else:
            sets = params
        plan = self._plan(db.dialect, tuple(sorted(sets[0])), len(sets) > 1) if sets else None
        if plan is None:
            return await db.execute(self.stmt, params)
        if len(sets) == 1:
            sql, args = plan.args(sets[0])
            cursor.execute(sql, args)
            return RawResult(plan.rows(cursor), cursor.rowcount)
        batch = [plan.args(p) for p in sets]
        if any(sql != batch[0][0] for sql, _ in batch):  # IN lists of different lengths
            return await db.execute(self.stmt, params)
        cursor.executemany(batch[0][0], [args for _, args in batch])
        return RawResult([], cursor.rowcount)


class _DefaultContext:
    """What a Python-side column default callable may ask of SQLAlchemy's execution
    context: the parameters of the row being inserted."""

    __slots__ = ("current_parameters",)

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.current_parameters = params

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> Any:
        return self.current_parameters


class InsertShape:
    """One row's INSERT into `table` as SQLAlchemy compiles it for the given columns: the
    SQL text, the columns it names in order, their bind processors, and for each column
    the row did not give, the Python-side default SQLAlchemy would fill (columns with
    neither are left out, so their server default or NULL applies). The raw writers (the
    encounter fast writer on SQLite, the group commit on PostgreSQL) insert through it, so
    a column added later with a default gets the same value on every path."""

    __slots__ = ("_plain", "columns", "defaults", "procs", "sql")

    def __init__(self, table: Table, keys: frozenset[str], dialect: Dialect) -> None:
        compiled = insert(table).compile(dialect=dialect, column_keys=sorted(keys))
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        # Positional drivers (sqlite3, asyncpg) in the SQL's order; named ones in the
        # order the columns are compiled, which is the SQL's too.
        names = list(compiled.positiontup) if compiled.positiontup is not None else [
            b.key for b in compiled.binds.values()]
        by_key = {c.key: c for c in table.columns}
        if any(n not in by_key for n in names):
            raise ValueError(f"{table.name}: an INSERT parameter is not a column")
        self.columns: tuple[Column[Any], ...] = tuple(by_key[n] for n in names)
        processors = compiled._bind_processors
        self.procs: tuple[_Proc, ...] = tuple(
            fast_processor(c.type, dialect, processors.get(n))  # type: ignore[arg-type]
            for c, n in zip(self.columns, names, strict=True))
        prefetch = {c.key for c in compiled.insert_prefetch}
        self.defaults = tuple(c.default if c.key in prefetch else None for c in self.columns)
        self._plain: tuple[tuple[str, _Proc | None], ...] | None = (
            tuple((c.key, p) for c, p in zip(self.columns, self.procs, strict=True))
            if all(d is None for d in self.defaults) else None)

    def params(self, values: Mapping[str, Any]) -> list[Any]:
        """The bound values of one row, in the SQL's order."""
        if self._plain is not None:  # every column given by the row: the hot path
            return [values[k] if p is None else None if (v := values[k]) is None else p(v)
                    for k, p in self._plain]
        out: list[Any] = []
        ctx: _DefaultContext | None = None
        for col, proc, default in zip(self.columns, self.procs, self.defaults, strict=True):
            if default is None:
                value = values[col.key]
            elif default.is_scalar:
                value = default.arg  # type: ignore[attr-defined]
            else:
                ctx = ctx or _DefaultContext(values)
                value = default.arg(ctx)  # type: ignore[attr-defined]
            out.append(value if proc is None or value is None else proc(value))
        return out


@functools.lru_cache(maxsize=512)
def many_rows_sql(sql: str, rows: int) -> str:
    """`INSERT ... VALUES (...)` (one row, as `InsertShape.sql`) for `rows` rows:
    `VALUES (...), (...), ...`; their bound values go one row after another."""
    head, sep, values = sql.partition(" VALUES ")
    if not sep or not values.startswith("(") or not values.endswith(")") or \
            ")" in values[:-1]:
        raise ValueError("not a one-row INSERT ... VALUES (...)")
    return f"{head} VALUES {', '.join([values] * rows)}"


@functools.cache
def insert_shape(table: Table, keys: frozenset[str], dialect: Dialect) -> InsertShape:
    """`InsertShape` for rows of `table` giving `keys`, compiled once per dialect."""
    return InsertShape(table, keys, dialect)
