"""SQLite group commit of `node.core.audit.record` (the encounter write), on the event loop.

Concurrent writes share one transaction and one head update. Each write queues its guard
(the head it chains on and the one it makes) and its INSERTs (`_Group.pending`); the first
starts the drain task, which lets the loop's other ready work run first (`_gather`: those
requests add their writes to the group), then, holding the in-process writer queue
(`Database.write_lock`), commits the whole group and answers each write.

The group is written inline, on one inline connection of `Database.write_engine`
(`federation.sqlite_inline`: busy timeout 0, no checkpoint inside a commit): `BEGIN
IMMEDIATE` with the async retry of `federation.sqlite_lock` (a lock held by another process
is waited for off the loop's back, then `busy`), the guarded head update, one multi-row
INSERT per table, the commit; checkpoints run on the checkpointer's thread after it.

Why inline: on the driver thread each of those statements handed the GIL to the loop and
waited to get it back, which delayed every answer of the group; gathered this way, the loop
stalls once per group for its statements (about 25 us a write, `MAX_GROUP` writes at most)
and, on the 16-client benchmark (`bench.node_api`), answers about 20 % more writes per
second at less CPU per write than the threaded group did.

A failing write in a group changes nothing and is retried alone, so only it fails, with
the error it has alone.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from federation.prepared import many_rows_sql
from federation.sqlite_inline import InlineConnection
from federation.sqlite_lock import begin_immediate, write_error
from node.core.db import Database

__all__ = ["GUARDED_HEAD", "group_commit", "unbroken", "write_batch", "write_group"]

GUARDED_HEAD = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ?"

# One write: its guard (new seq, new hash, expected seq, expected hash) and its INSERTs.
Item = tuple[tuple[Any, ...], list[tuple[str, list[Any]]]]
_Waiting = tuple[tuple[Any, ...], list[tuple[str, list[Any]]], "asyncio.Future[bool]"]

# The drain waits for the loop to run out of other ready work: `_QUIET` loop iterations in
# a row that each come back within `_IDLE_S` (nothing else ran), at most `_GATHER_S` in
# all. Requests already read are then in the group, which is what keeps groups large under
# load; an idle node adds about `_QUIET` empty iterations (tens of microseconds).
_QUIET = 16
_IDLE_S = 30e-6
_GATHER_S = 0.002
MAX_GROUP = 64  # writes per group at most: bounds the loop's stall on one group


class _Group:
    """The writes waiting for the next group, the drain task, and the group connection."""

    def __init__(self) -> None:
        self.pending: list[_Waiting] = []
        self.running = False
        self.task: asyncio.Task[None] | None = None
        self.conn: sqlite3.Connection | None = None
        self.no_inline = False  # the write engine has no inline connections

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


async def group_commit(db: Database, guard: tuple[Any, ...],
                       inserts: list[tuple[str, list[Any]]]) -> bool | None:
    """Write `inserts` with the head move `guard` in the next group; True when the head had
    moved (nothing written), None when there is no inline connection (an in-memory or URI
    database): the caller then writes it the slow way."""
    group: _Group | None = db.write_group
    if group is None:
        group = db.write_group = _Group()
    if group.conn is None and (group.no_inline or not await _connect(db, group)):
        return None
    fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    group.pending.append((guard, inserts, fut))
    if not group.running:
        # The drain runs as its own task, so a cancelled request cannot stop the others'.
        group.running = True
        group.task = asyncio.create_task(_drain(db, group))
    # No shield: a cancelled caller cancels only its own future, which delivery skips.
    return await fut


async def _connect(db: Database, group: _Group) -> bool:
    """Take one inline connection out of the write engine's pool for the groups."""
    raw = await db.write_engine.raw_connection()
    driver = raw.driver_connection
    if not isinstance(driver, InlineConnection) or driver._connection is None:
        raw.close()
        group.no_inline = True
        return False
    raw.detach()
    if group.conn is None:
        group.conn = driver._conn
    else:  # another write connected meanwhile
        driver.stop()
    return True


async def _drain(db: Database, group: _Group) -> None:
    try:
        while group.pending:
            await _gather(group)
            conn = group.conn
            if conn is None:
                break
            async with db.write_lock():
                batch, group.pending = group.pending[:MAX_GROUP], group.pending[MAX_GROUP:]
                moved, failed = await _commit(db, conn, [(g, i) for g, i, _ in batch])
            if db.checkpointer is not None:
                db.checkpointer.after_commit()
            _deliver(db, batch, moved, failed)
    finally:
        group.running = False
        for _, _, f in group.pending:  # only when the drain itself failed: the slow way
            if not f.done():
                f.set_result(True)
        group.pending = []


async def _gather(group: _Group) -> None:
    """Yield to the loop until it has nothing else ready (module constants)."""
    start = last = time.perf_counter()
    quiet = 0
    while quiet < _QUIET and len(group.pending) < MAX_GROUP:
        await asyncio.sleep(0)
        now = time.perf_counter()
        if now - start > _GATHER_S:
            return
        quiet = quiet + 1 if now - last < _IDLE_S else 0
        last = now


async def _commit(db: Database, conn: sqlite3.Connection,
                  items: list[Item]) -> tuple[list[bool] | None, Exception | None]:
    """The group, committed: each write's "head moved" answer, or the error for all."""
    try:
        await begin_immediate(conn, db.busy_wait_s)
        return write_group(conn, items), None
    except Exception as exc:  # noqa: BLE001 - each write of the group gets it
        if conn.in_transaction:
            conn.rollback()
        return None, exc


def _deliver(db: Database, batch: list[_Waiting], moved: list[bool] | None,
             failed: Exception | None) -> None:
    """Each write's answer (True: the head had moved, go the slow way)."""
    if failed is not None:
        # As `db.write()` raises it, whatever the size of the group.
        err = write_error(failed, db.engine.dialect) if isinstance(
            failed, sqlite3.Error) else failed
        for _, _, f in batch:
            if not f.done():
                f.set_exception(err)
        return
    assert moved is not None
    for (_, _, f), m in zip(batch, moved, strict=True):
        if not f.done():
            f.set_result(m)


def write_group(conn: sqlite3.Connection,
                 items: list[tuple[tuple[Any, ...], list[tuple[str, list[Any]]]]]) -> list[bool]:
    """The writes of a group in one transaction (the caller's, if it opened one). Each
    item's guard chains on the one before, so if the first finds the head moved nothing is
    written and every item goes the slow way (True). If any statement fails, the group is
    rolled back and its items run one by one, so one bad write cannot fail the others.

    When the guards form one unbroken chain (the usual case), the group moves the head
    once, from the first item's expected head to the last item's entry, and inserts each
    table's rows in one multi-row statement (`insert_rows`)."""
    if len(items) == 1:
        return [write_batch(conn, *items[0])]
    cur = conn.cursor()
    try:
        _begin_if_idle(cur)
        if unbroken(items):
            first, last = items[0][0], items[-1][0]
            cur.execute(GUARDED_HEAD, (last[0], last[1], first[2], first[3]))
            if cur.rowcount != 1:
                conn.rollback()
                return [True] * len(items)
            by_sql: dict[str, list[list[Any]]] = {}
            for _, inserts in items:  # tables in first-named order: a follow-up after its
                for sql, params in inserts:  # encounter, the entries last
                    by_sql.setdefault(sql, []).append(params)
            for sql, many in by_sql.items():
                insert_rows(cur, sql, many)
            conn.commit()
            return [False] * len(items)
        for i, (guard, inserts) in enumerate(items):
            cur.execute(GUARDED_HEAD, guard)
            if cur.rowcount != 1:
                conn.rollback()
                if i == 0:
                    return [True] * len(items)
                break
            for sql, params in inserts:
                cur.execute(sql, params)
        else:
            conn.commit()
            return [False] * len(items)
    except Exception:
        if conn.in_transaction:
            conn.rollback()
    finally:
        cur.close()
    out: list[bool] = []
    for guard, inserts in items:
        try:
            out.append(write_batch(conn, guard, inserts))
        except Exception:
            out.append(True)  # this one goes the slow way and reports its own error
    return out


def insert_rows(cur: sqlite3.Cursor, sql: str, many: list[list[Any]]) -> None:
    """The rows of one INSERT as multi-row statements (`many_rows_sql`), chunked under
    SQLite's variable limit: one step each instead of one per row; the rows, their order
    and their errors are those of `executemany`."""
    per = max(1, MAX_VARIABLES // max(1, len(many[0])))
    for start in range(0, len(many), per):
        chunk = many[start:start + per]
        if len(chunk) == 1:
            cur.execute(sql, chunk[0])
        else:
            cur.execute(many_rows_sql(sql, len(chunk)), [v for row in chunk for v in row])


MAX_VARIABLES = 32766  # SQLITE_MAX_VARIABLE_NUMBER's default since SQLite 3.32


def unbroken(items: list[tuple[tuple[Any, ...], list[tuple[str, list[Any]]]]]) -> bool:
    """Each guard (new seq, new hash, old seq, old hash) expects the head the one before
    it writes."""
    return all(items[i][0][2:4] == items[i - 1][0][0:2] for i in range(1, len(items)))


def _begin_if_idle(cur: sqlite3.Cursor) -> None:
    # The connection issues no implicit BEGIN (federation.database): take the write lock
    # first, so the guard's check and the writes are one atomic step.
    if not cur.connection.in_transaction:
        cur.execute("BEGIN IMMEDIATE")


def write_batch(conn: sqlite3.Connection, guard: tuple[Any, ...],
                 inserts: list[tuple[str, list[Any]]]) -> bool:
    """One write alone: the guarded head update, the inserts, the commit, as one
    transaction. True when the head had moved and nothing was written."""
    cur = conn.cursor()
    try:
        _begin_if_idle(cur)
        cur.execute(GUARDED_HEAD, guard)
        if cur.rowcount != 1:
            conn.rollback()
            return True
        for sql, params in inserts:
            cur.execute(sql, params)
        conn.commit()
        return False
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    finally:
        cur.close()


