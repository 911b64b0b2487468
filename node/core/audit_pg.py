"""Group commit of audit-chained writes on PostgreSQL (`node.core.audit.record`).

Every audit append takes the one `audit_head` row lock, so on PostgreSQL concurrent
encounter writes used to queue on that row one transaction at a time (334 writes/s, p99
271 ms at 16 clients). Here the writes that arrive while a group is being written wait in
memory and go together in the next, as on SQLite (`node.core.audit._group_commit`).

A group is one statement, so one round trip and one implicit transaction, on a connection
kept for it (`Database.fast_writer`), and the database links the entries itself under the
head row lock the statement takes, as the single append does (`audit_pg_append`):

    WITH RECURSIVE
      old AS (SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE),
      chain AS (old, then for entry i: seq + 1, sha256(A[i] || prev || B[i] || seq || C[i])),
      h AS (UPDATE audit_head SET (seq, hash) = the last link),
      r0 AS (INSERT INTO encounters (...) SELECT * FROM unnest($12::UUID[], ...)),
      ...,                                       -- one per table and set of columns
      a AS (INSERT INTO audit_log (...) SELECT chain ⋈ unnest(entries) WITH ORDINALITY)
    SELECT old.seq, old.hash, <last hash>, ...

Why in the database: the lock is then held inside the server only, from the statement's
`FOR UPDATE` to its implicit commit, with no round trip to this process in between. An
earlier version chained the group on the head this process remembered and fell back,
when an activation's append had moved it, to `BEGIN`, `SELECT ... FOR UPDATE`, the
statement and `COMMIT`: four round trips and three event-loop turns under the lock, while
the encounters and the activations queued behind it (bench.load: p99 5.4 s, 60
encounters/s). Now a group never fails on a moved head, and it links after whatever
committed before it, in this process or another, so several node processes keep one linear
chain.

Two groups may be in flight at once, each on its own kept connection (`_SLOTS`): while
one waits for the head row lock (behind an activation's append) the writes that arrive go
out as the next group and queue in the database right behind it, instead of waiting in
memory for the first to come back.

The bytes hashed are exactly `entry_bytes` of the stored row (`audit_pg_append.hash_parts`:
the canonical bytes around `prev` and `seq`); this process relinks the group in Python
from the head the statement returns and compares the last hash, and `verify` recomputes
every one.

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
import contextvars
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

from federation.prepared import InsertShape, insert_shape
from node.core.audit_entry import link_entry
from node.core.audit_pg_append import hash_parts
from node.core.db import Database

__all__ = ["MAX_GROUP", "PgGroup", "record_in_group"]

log = logging.getLogger("peernet.node.audit")

MAX_GROUP = 256  # writes per statement at most (a burst is written in several)
_SLOTS = 2  # groups in flight at once, each on its own kept connection
_ENTRY_COLS = (("ts", "bigint"), ("actor", "text"), ("role", "text"), ("action", "text"),
               ("target_type", "text"), ("target_id", "text"), ("outcome", "text"),
               ("detail", "text"))

# The kept connection the current drain task writes on (each drain is its own task).
_SLOT: contextvars.ContextVar[int] = contextvars.ContextVar("peernet_audit_group_slot",
                                                            default=0)

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
    free: list[int] = field(default_factory=lambda: list(range(_SLOTS)))  # idle slots
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    sizes: list[int] = field(default_factory=list)  # recent group sizes (tests, benches)
    locked: int = 0  # kept for the benches: groups that had to retry under a lock (none)

    @property
    def running(self) -> bool:
        return len(self.free) < _SLOTS


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
    if group.free:
        # The drain runs as its own task, so a cancelled request cannot stop the others'.
        slot = group.free.pop(0)
        task = asyncio.create_task(_drain(db, group, slot))
        group.tasks.add(task)
        task.add_done_callback(group.tasks.discard)
    # No shield: a cancelled caller cancels only its own future, which the drain skips.
    return await fut


async def _drain(db: Database, group: PgGroup, slot: int) -> None:
    batch: list[_Item] = []
    _SLOT.set(slot)
    try:
        while group.pending:
            batch, group.pending = group.pending[:MAX_GROUP], group.pending[MAX_GROUP:]
            try:
                stored = await _write_group(db, group, batch)
            except Exception:  # noqa: BLE001 - each write retries alone and reports its own
                await db.drop_fast_writer(slot)
                stored = [None] * len(batch)
            else:
                del group.sizes[:-100]
                group.sizes.append(len(batch))
            for item, row in zip(batch, stored, strict=True):
                if not item.fut.done():
                    item.fut.set_result(row)
            batch = []
    finally:
        group.free.append(slot)
        for item in batch:
            if not item.fut.done():  # only when the drain itself was stopped: the slow way
                item.fut.set_result(None)
        if not group.running:
            for item in group.pending:
                if not item.fut.done():
                    item.fut.set_result(None)
            group.pending = []


async def _write_group(db: Database, group: PgGroup,
                       batch: list[_Item]) -> list[dict[str, Any] | None]:
    conn = await db.fast_writer(_SLOT.get())
    sql, args = _statement(batch, db.engine.dialect)
    row = await conn.fetchrow(sql, *args)
    seq, prev = row[0], row[1]
    entries: list[dict[str, Any] | None] = []
    for item in batch:
        entry = dict(item.entry)
        link_entry(entry, seq, prev)
        seq, prev = entry["seq"], entry["hash"]
        entries.append(entry)
    if prev != row[2]:  # committed already: say so loudly, `verify` names the entry
        log.error("audit group: the database hashed other bytes than the entries'")
    return entries


def _statement(batch: list[_Item], dialect: Dialect) -> tuple[str, list[Any]]:
    """The group's one statement with its arguments (the database links the entries)."""
    groups: dict[tuple[Table, frozenset[str]], list[Mapping[str, Any]]] = {}
    for item in batch:
        for table, values in item.rows:
            groups.setdefault((table, frozenset(values)), []).append(values)
    # Tables in the order the rows first name them (a follow-up after its encounter).
    order = {t: i for i, t in enumerate(dict.fromkeys(t for t, _ in groups))}
    keys = sorted(groups, key=lambda k: order[k[0]])
    sql, shapes = _sql(tuple(keys), dialect)
    parts = [hash_parts(item.entry) for item in batch]
    args: list[Any] = [[p[i] for p in parts] for i in range(3)]
    args.extend([item.entry[k] for item in batch] for k, _ in _ENTRY_COLS)
    for shape, key in zip(shapes, keys, strict=True):
        bound = [shape.params(v) for v in groups[key]]
        args.extend(list(column) for column in zip(*bound, strict=True))
    return sql, args


_HASH = ("rtrim(translate(encode(sha256(($1::bytea[])[c.i + 1] || convert_to(c.hash, 'UTF8')"
         " || ($2::bytea[])[c.i + 1] || convert_to((c.seq + 1)::text, 'UTF8')"
         " || ($3::bytea[])[c.i + 1]), 'base64'), '+/', '-_'), '=')")


_CHAIN = ("chain (i, seq, hash, prev) AS (SELECT 0, seq, hash::text, hash::text FROM old "  # noqa: S608 - constant
          "UNION ALL SELECT c.i + 1, c.seq + 1, " + _HASH + ", c.hash FROM chain c "
          "WHERE c.i < cardinality($1::bytea[]))")


@functools.cache
def _sql(shape: Shape, dialect: Dialect) -> tuple[str, list[InsertShape]]:
    """The group statement for rows of these tables and columns (cached: the text does not
    depend on the number of rows, so the server prepares it once per connection)."""
    entry_args = [f"${4 + i}::{t}[]" for i, (_, t) in enumerate(_ENTRY_COLS)]
    entry_names = ", ".join(k for k, _ in _ENTRY_COLS)
    ctes = [
        "old AS (SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE)",
        _CHAIN,
        "last AS (SELECT seq, hash FROM chain ORDER BY i DESC LIMIT 1)",
        "h AS (UPDATE audit_head SET seq = last.seq, hash = last.hash FROM last "
        "WHERE audit_head.id = 1 RETURNING 1)",
        f"a AS (INSERT INTO audit_log (seq, {entry_names}, prev_hash, hash) "  # noqa: S608
        f"SELECT c.seq, {', '.join('e.' + k for k, _ in _ENTRY_COLS)}, c.prev, c.hash "
        f"FROM chain c JOIN unnest({', '.join(entry_args)}) WITH ORDINALITY "
        f"AS e({entry_names}, i) ON e.i = c.i)",
    ]
    n = 3 + len(_ENTRY_COLS)
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
                    f"({names}) SELECT * FROM unnest({', '.join(arrays)}))")
    sql = ("WITH RECURSIVE " + ", ".join(ctes)  # noqa: S608 - our own tables and columns
           + " SELECT (SELECT seq FROM old), (SELECT hash FROM old), (SELECT hash FROM last),"
           " (SELECT count(*) FROM h)")
    return sql, shapes
