"""A whole SQLite group commit in one statement (`node.core.audit`'s fast writer).

The group runs on the driver thread, beside the event loop. Every sqlite3 call there
releases the GIL around SQLite's work and must get it back from the loop afterwards; the
statement-by-statement group (`BEGIN IMMEDIATE`, the guarded head update, one INSERT per
table, `COMMIT`: six calls) spent most of its time waiting for it, and each wait delayed
the answers to every write of the group. Measured on the 16-client benchmark
(`bench.node_api`), a group in one call commits in about a third of the wall time and the
node answers 7-12 % more writes per second.

How: each write of the group is one row of a multi-row INSERT into a TEMP view whose
INSTEAD OF trigger inserts the row's parts into their tables: for each statement of the
group (`INSERT INTO t (cols) VALUES (?, ...)`, as `federation.prepared.InsertShape` writes
it) a presence flag and its values. The first row carries the head the group chains on and
the trigger refuses it (`RAISE`) when the head moved; the last row carries the head the
group leaves and the trigger moves it there. In autocommit the statement is its own
transaction: it takes the write lock as it starts (so the check and the writes are atomic
against other processes), waits for a busy lock on this thread as the statements did, and
commits as it ends. Any failure writes nothing.

The values are bound as parameters, as the per-table statements bind them, and the view's
columns have no declared type, so each value reaches its column with the same type and
affinity. The view and its trigger exist only on the writer's own connection (TEMP), one
pair per combination of statements, made on first use.

`write_in_one_step` answers None when it does not apply (an open transaction, a statement
of another shape, more variables than SQLite takes in one statement, or a failure other
than a moved head or a busy lock): the caller then writes the group statement by
statement, which also finds which write failed.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sqlite3
from typing import Any

from federation.sqlite_lock import is_busy

__all__ = ["HEAD_MOVED", "write_in_one_step"]

HEAD_MOVED = "peernet: the audit head moved under this group"
_MAX_VARIABLES = 32766  # SQLITE_MAX_VARIABLE_NUMBER's default since SQLite 3.32
_SHAPE = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \(\?(?:, \?)*\)")

# One group's writes: (guard, [(sql, params), ...]); the guard is (new seq, new hash,
# expected seq, expected hash).
Item = tuple[tuple[Any, ...], list[tuple[str, list[Any]]]]


class _View:
    __slots__ = ("name", "statements", "widths", "width")

    def __init__(self, name: str, statements: tuple[str, ...], widths: list[int]) -> None:
        self.name = name
        self.statements = statements
        self.widths = widths
        self.width = 4 + len(widths) + sum(widths)


def _ddl(name: str, statements: tuple[str, ...]) -> tuple[str, list[int]] | None:
    columns = ["g0", "g1", "g2", "g3"]
    body = [  # names made here and by InsertShape; every value is a bound parameter
        f"SELECT RAISE(ABORT, '{HEAD_MOVED}') WHERE NEW.g2 IS NOT NULL AND NOT EXISTS "  # noqa: S608
        "(SELECT 1 FROM audit_head WHERE id = 1 AND seq = NEW.g2 AND hash = NEW.g3);",
        "UPDATE audit_head SET seq = NEW.g0, hash = NEW.g1 WHERE id = 1 AND NEW.g0 IS NOT NULL;",
    ]
    widths = []
    for k, sql in enumerate(statements):
        match = _SHAPE.fullmatch(sql)
        if match is None:
            return None
        table, names = match.group(1), match.group(2)
        n = sql.count("?")
        if n != len(names.split(",")):
            return None
        widths.append(n)
        own = [f"s{k}_{i}" for i in range(n)]
        columns += [f"s{k}_p", *own]
        body.append(f"INSERT INTO {table} ({names}) SELECT "
                    f"{', '.join('NEW.' + c for c in own)} WHERE NEW.s{k}_p;")
    return (f"CREATE TEMP VIEW IF NOT EXISTS {name} AS SELECT "
            f"{', '.join('NULL AS ' + c for c in columns)};\n"
            f"CREATE TEMP TRIGGER IF NOT EXISTS {name}_rows INSTEAD OF INSERT ON {name} BEGIN\n"
            + "\n".join(body) + "\nEND;"), widths


@functools.lru_cache(maxsize=256)
def _order(shapes: tuple[tuple[str, ...], ...]) -> tuple[str, ...] | None:
    """One order of the group's statements that keeps each write's own order (a follow-up
    after its encounter): the trigger runs them in it for every write. None when a write
    names a statement twice or two writes order them differently."""
    first: dict[str, int] = {}
    after: dict[str, set[str]] = {}
    for shape in shapes:
        if len(set(shape)) != len(shape):
            return None
        for sql in shape:
            first.setdefault(sql, len(first))
            after.setdefault(sql, set())
        for a, b in zip(shape, shape[1:], strict=False):
            after[a].add(b)
    before = dict.fromkeys(first, 0)
    for nexts in after.values():
        for b in nexts:
            before[b] += 1
    ready = [sql for sql in first if before[sql] == 0]
    out: list[str] = []
    while ready:
        sql = min(ready, key=first.__getitem__)  # ties: first named first
        ready.remove(sql)
        out.append(sql)
        for b in after[sql]:
            before[b] -= 1
            if before[b] == 0:
                ready.append(b)
    return tuple(out) if len(out) == len(first) else None


@functools.lru_cache(maxsize=256)
def _insert_sql(view: str, width: int, rows: int) -> str:
    row = "(" + ", ".join(["?"] * width) + ")"
    return f"INSERT INTO {view} VALUES " + ", ".join([row] * rows)  # noqa: S608 - our view


def _view(conn: sqlite3.Connection, views: dict[tuple[str, ...], _View | None],
          statements: tuple[str, ...]) -> _View | None:
    if statements in views:
        return views[statements]
    # Named by what it writes: the same statements always make the same view.
    name = "peernet_group_" + hashlib.sha256("\n".join(statements).encode()).hexdigest()[:20]
    made = _ddl(name, statements)
    view = None
    if made is not None:
        conn.executescript(made[0])
        view = _View(name, statements, made[1])
    views[statements] = view  # None: a shape this cannot take, asked once
    return view


def write_in_one_step(conn: sqlite3.Connection, items: list[Item],
                      views: dict[tuple[str, ...], Any]) -> bool | None:
    """Write the unbroken chain `items` in one statement: False when written, True when
    the head had moved (nothing written), None when the caller must write it statement
    by statement. A lock held past the busy timeout raises, as `BEGIN IMMEDIATE` would.
    `views` is the connection's own cache (kept by the caller with the connection)."""
    if conn.in_transaction:
        return None
    order = _order(tuple(dict.fromkeys(tuple(sql for sql, _ in ins) for _, ins in items)))
    if order is None:
        return None
    view = _view(conn, views, order)
    if view is None or view.width * len(items) > _MAX_VARIABLES:
        return None
    params: list[Any] = []
    last = len(items) - 1
    for i, (guard, inserts) in enumerate(items):
        params += guard[:2] if i == last else (None, None)
        params += guard[2:4] if i == 0 else (None, None)
        given = dict(inserts)  # each statement once per write (`_order`)
        for sql, width in zip(view.statements, view.widths, strict=True):
            values = given.get(sql)
            if values is None:
                params.append(0)
                params += [None] * width
            else:
                params.append(1)
                params += values
    try:
        conn.execute(_insert_sql(view.name, view.width, len(items)), params)
    except sqlite3.IntegrityError as exc:
        return True if str(exc) == HEAD_MOVED else None
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise
        if f"no such table: {view.name}" in str(exc):
            del views[view.statements]  # another connection under this cache: make it again
        return None
    return False
