"""Group commit of audit-chained writes on PostgreSQL (`node.core.audit.record`).

Every audit append takes the one `audit_head` row lock and holds it until its transaction
commits, so on PostgreSQL concurrent encounter writes used to queue on that row one
transaction at a time (measured: 334 writes/s, p99 271 ms at 16 clients; with 200 clients
and a pool of 40, the waiters woken together on every commit made it far worse).

Here the writes that arrive while one group is being written wait in memory and go together
in the next, as on SQLite (`node.core.audit._group_commit`). A group is one statement, so
one round trip and one implicit transaction, on a connection kept for it
(`Database.fast_writer`):

    WITH h AS (UPDATE audit_head SET seq = <new>, hash = <new>
               WHERE id = 1 AND seq = <old> AND hash = <old> RETURNING 1),
         r0 AS (INSERT INTO encounters (...) SELECT * FROM unnest($5::UUID[], ...)
                WHERE EXISTS (SELECT 1 FROM h)),
         ...,                                       -- one per table and set of columns
         a AS (INSERT INTO audit_log (...) SELECT * FROM unnest(...) WHERE EXISTS (...))
    SELECT count(*) FROM h

The entries are chained here, in queue order, from the head this process wrote last (as
the SQLite fast writer does), and the guarded head update proves that head still holds: if
another process (or an `append` of this one) moved it, the update matches nothing, so
nothing is inserted, and the group is written again under the head row lock (`BEGIN`,
`SELECT ... FOR UPDATE`, the same statement, `COMMIT`). Either way the entries are linked
exactly as n single appends in queue order would link them, so the chain, the signed head
and `peernet node audit verify` see no difference, and several node processes over one
database keep one linear chain (each group is checked against, or locks, the head it
extends).

Rows are inserted through the prepared layer's `insert_shape` (the columns SQLAlchemy's
INSERT names, its bind processors and Python-side column defaults), so a column added later
with a default gets the same value here as on the ordinary path.

A failing write changes nothing and fails alone: the statement is atomic, so if any row of
a group is refused, nothing of the group is stored and every write of it answers None; its
caller then runs the ordinary path (`append` in a `db.write()` transaction of its own), so
the good writes land and the bad one raises the error it would have raised alone.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

from federation.prepared import InsertShape, insert_shape
from node.core.audit_entry import LAST_HEADS, link_entry
from node.core.db import AuditEntry, Database, table_of

__all__ = ["MAX_GROUP", "PgGroup", "record_in_group"]

MAX_GROUP = 256  # writes per statement at most (a burst is written in several)
_entries = table_of(AuditEntry)
_LOCK_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"

Rows = Sequence[tuple[Table, Mapping[str, Any]]]
Shape = tuple[tuple[Table, frozenset[str]], ...]


@dataclass
class _Item:
    rows: Rows
    entry: dict[str, Any]  # the entry row without its link (seq, prev_hash, hash)
    fut: asyncio.Future[dict[str, Any] | None]


@dataclass
class PgGroup:
    """The writes waiting for the next group statement of one `Database`."""

    pending: list[_Item] = field(default_factory=list)
    running: bool = False
    task: asyncio.Task[None] | None = None
    sizes: list[int] = field(default_factory=list)  # recent group sizes (tests, benches)
    locked: int = 0  # groups written under the head row lock (the head had moved)


async def record_in_group(db: Database, rows: Rows,
                          entry: dict[str, Any]) -> dict[str, Any] | None:
    """Write `rows` and the entry `entry` (`audit_entry.entry_row`, unlinked) in the next
    group statement; the stored entry, or None when the group failed and nothing of this
    write was stored (the caller then writes it the ordinary way)."""
    group = db.write_group
    if not isinstance(group, PgGroup):
        group = db.write_group = PgGroup()
    fut: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
    group.pending.append(_Item(rows, entry, fut))
    if not group.running:
        # The drain runs as its own task, so a cancelled request cannot stop the others'.
        group.running = True
        group.task = asyncio.create_task(_drain(db, group))
    return await asyncio.shield(fut)


async def _drain(db: Database, group: PgGroup) -> None:
    batch: list[_Item] = []
    try:
        while group.pending:
            batch, group.pending = group.pending[:MAX_GROUP], group.pending[MAX_GROUP:]
            try:
                stored = await _write_group(db, group, batch)
            except Exception:  # noqa: BLE001 - each write retries alone and reports its own
                LAST_HEADS.pop(db.engine.sync_engine.pool, None)
                await _drop_broken(db)
                stored = [None] * len(batch)
            else:
                del group.sizes[:-100]
                group.sizes.append(len(batch))
            for item, row in zip(batch, stored, strict=True):
                if not item.fut.done():
                    item.fut.set_result(row)
    finally:
        group.running = False
        for item in batch + group.pending:
            if not item.fut.done():  # only when the drain itself was stopped: the slow way
                item.fut.set_result(None)
        group.pending = []


async def _write_group(db: Database, group: PgGroup,
                       batch: list[_Item]) -> list[dict[str, Any] | None]:
    conn = await db.fast_writer()
    dialect = db.engine.dialect
    pool = db.engine.sync_engine.pool
    head = LAST_HEADS.get(pool)
    if head is not None:
        entries, sql, args = _statement(batch, head, dialect)
        if await conn.fetchval(sql, *args):
            _wrote(pool, head, entries[-1])
            return list(entries)
    group.locked += 1
    async with conn.transaction():
        row = await conn.fetchrow(_LOCK_HEAD)
        head = row["seq"], row["hash"]
        entries, sql, args = _statement(batch, head, dialect)
        if not await conn.fetchval(sql, *args):
            raise RuntimeError("the audit head moved under its row lock")
    _wrote(pool, head, entries[-1])
    return list(entries)


def _wrote(pool: Any, head: tuple[int, str], last: Mapping[str, Any]) -> None:
    # An `append` that linked onto this group's entries while it ran (it waited for the
    # row lock) has already noted a later head: keep that one.
    if LAST_HEADS.get(pool, head) == head or LAST_HEADS[pool][0] <= last["seq"]:
        LAST_HEADS[pool] = (last["seq"], last["hash"])


def _statement(batch: list[_Item], head: tuple[int, str],
               dialect: Dialect) -> tuple[list[dict[str, Any]], str, list[Any]]:
    """The group's entries chained on `head`, and its one statement with arguments."""
    seq, prev = head
    entries: list[dict[str, Any]] = []
    for item in batch:
        row = dict(item.entry)
        link_entry(row, seq, prev)
        seq, prev = row["seq"], row["hash"]
        entries.append(row)
    groups: dict[tuple[Table, frozenset[str]], list[Mapping[str, Any]]] = {}
    for item in batch:
        for table, values in item.rows:
            groups.setdefault((table, frozenset(values)), []).append(values)
    # Tables in the order the rows first name them (a follow-up after its encounter).
    order = {t: i for i, t in enumerate(dict.fromkeys(t for t, _ in groups))}
    keys = sorted(groups, key=lambda k: order[k[0]])
    parts: list[tuple[tuple[Table, frozenset[str]], Sequence[Mapping[str, Any]]]] = [
        (k, groups[k]) for k in keys]
    parts.append(((_entries, frozenset(entries[0])), entries))
    sql, shapes = _sql(tuple(k for k, _ in parts), dialect)
    args: list[Any] = [seq, prev, head[0], head[1]]
    for shape, (_, rows) in zip(shapes, parts, strict=True):
        bound = [shape.params(v) for v in rows]
        args.extend(list(column) for column in zip(*bound, strict=True))
    return entries, sql, args


@functools.cache
def _sql(shape: Shape, dialect: Dialect) -> tuple[str, list[InsertShape]]:
    """The group statement for rows of these tables and columns (cached: the text does not
    depend on the number of rows, so the server prepares it once per connection)."""
    n = 4
    ctes = ["h AS (UPDATE audit_head SET seq = $1, hash = $2 "
            "WHERE id = 1 AND seq = $3 AND hash = $4 RETURNING 1)"]
    shapes = []
    for i, (table, keys) in enumerate(shape):
        s = insert_shape(table, keys, dialect)
        shapes.append(s)
        arrays = []
        for col in s.columns:
            n += 1
            arrays.append(f"${n}::{col.type.compile(dialect=dialect)}[]")
        names = ", ".join(dialect.identifier_preparer.quote(c.name) for c in s.columns)
        ctes.append(f"r{i} AS (INSERT INTO {dialect.identifier_preparer.format_table(table)} "  # noqa: S608 - our own tables
                    f"({names}) SELECT * FROM unnest({', '.join(arrays)}) "
                    "WHERE EXISTS (SELECT 1 FROM h))")
    return "WITH " + ", ".join(ctes) + " SELECT count(*) FROM h", shapes  # noqa: S608


async def _drop_broken(db: Database) -> None:
    """A group connection the server closed is replaced on the next group."""
    conn = db._fast  # noqa: SLF001 - the node database's kept connection
    if conn is not None and conn.is_closed():
        db._fast = None  # noqa: SLF001
