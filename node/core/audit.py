"""The node's audit log: an append-only hash chain with a signed head.

Entry `n` (1, 2, ...) is the canonical JSON (`protocol.canonical.canonical_bytes`) of

    {"seq", "ts", "actor", "role", "action", "target_type", "target_id", "outcome",
     "detail", "prev"}

where `detail` is a canonical JSON text (counts, codes, never record contents) and `prev`
is the `hash` of entry `n-1` (entry 1: `GENESIS_HASH`). Each row stores `prev_hash` and its
own `hash` = SHA-256 (base64url) of its canonical bytes. The `audit_head` row holds the last
`seq` and `hash`.

Appends happen inside the caller's write transaction (the audit entry commits or rolls back
with the change it describes) and are serialised. PostgreSQL: the entry is staged in the
caller's transaction and linked when it commits, by a deferred trigger inside the server
that takes the head row lock, hashes the entry's canonical bytes and moves the head
(`node.core.audit_staged`): no client round trip happens under the lock; `append` returns
the row unlinked (seq 0) there. SQLite: the writer already holds the database lock (`BEGIN
IMMEDIATE`, behind the in-process write lock of `node.core.db.Database.write`); the process
remembers the head it wrote last (`audit_entry.LAST_HEADS`) and proves it still holds with a
guarded `UPDATE ... WHERE seq = ? AND hash = ?` (another process's append makes it match
nothing, and the head row is read instead).

`record` (the encounter write) is group commit on both engines: concurrent writes share one
transaction and one head update. SQLite: the driver's thread runs group after group
(`_run_groups`, `_write_group`) while writes keep coming, each committed group answered at
once, without a round trip through the loop between groups. PostgreSQL: one statement per
group that links its entries in the database under the head row lock (`node.core.audit_pg`;
two groups in flight). A failing write in a group changes nothing and is retried alone, so
only it fails, with the error it has alone.

Head signature (`protocol.audit_head`): the node signs the head's own `seq` and `hash` with
its node id and the time, with its Ed25519 signing key, and stores it in the head row with
the key id. The app signs as the head moves: on start, every `audit_sign_interval_s` (a few
seconds) when the head moved (`head_moved` is a plain read, so an idle node takes no write
lock), and on shutdown; CLI commands that append sign when the passphrase is at hand. Not on
every append: that would put a signature and a head-row write on the hot path (the group
commit below). Signed heads are anchored at the hub (`node.web.audit_anchor`).

`node.core.audit_verify` walks the chain and names the first problem (missing, altered,
broken_link, head_mismatch, unsigned_head, stale_signature, bad_signature, ...);
`peernet node audit verify` adds the hub's anchor (behind_anchor, anchor_mismatch).
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.keystore import NodeKeys
from federation.prepared import insert_shape, many_rows_sql
from federation.sqlite_lock import write_error
from node.core.access import Principal
from node.core.audit_entry import LAST_HEADS, entry_bytes, entry_row, link_entry
from node.core.audit_pg import record_in_group
from node.core.audit_pg_append import append_entry
from node.core.audit_staged import link_now
from node.core.db import AuditEntry, AuditHead, Database, table_of
from protocol.audit_head import HEAD_CONTEXT, head_signing_input, sign_head_bytes
from protocol.encoding import b64u

__all__ = [
    "HEAD_CONTEXT",
    "append",
    "detail_of",
    "entry_bytes",
    "head_moved",
    "head_signing_input",
    "record",
    "sign_head",
]

# Last head this process wrote, per connection pool (see `append`): an engine and the
# option proxies made of it (`Database` writes through one) share their pool.
_HEADS = LAST_HEADS
_entries = table_of(AuditEntry)
_head = table_of(AuditHead)


async def append(
    conn: AsyncConnection,
    *,
    ts: int,
    rows: Sequence[tuple[Table, Mapping[str, Any]]] = (),
    action: str,
    actor: Principal | None = None,
    target_type: str | None = None,
    target_id: str | uuid.UUID | None = None,
    outcome: str = "ok",
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one entry in the caller's (write) transaction; returns the stored row.

    `rows`: rows to insert first, in the same transaction (the change this entry records).
    """
    row = entry_row(ts, action, actor, target_type, target_id, outcome, detail)
    pool = conn.sync_engine.pool
    cached = _HEADS.get(pool) if conn.dialect.name == "sqlite" else None
    if conn.dialect.name == "postgresql":
        # Linked at this transaction's commit, inside the server (`node.core.audit_staged`).
        await _append_postgres(conn, rows, row)
        return row
    for table, values in rows:
        await conn.execute(insert(table), [dict(values)])
    if cached is not None:
        # SQLite writers are serialised, so the head we wrote last is almost always still
        # the head; the guarded UPDATE proves it (another process or a rollback makes it
        # match nothing, and we fall back to reading the head row).
        link_entry(row, *cached)
        guarded = await conn.execute(
            update(_head).where(_head.c.id == 1, _head.c.seq == cached[0],
                                _head.c.hash == cached[1])
            .values(seq=row["seq"], hash=row["hash"])
        )
        if guarded.rowcount != 1:
            cached = None
    if cached is None:
        head = (await conn.execute(
            select(_head.c.seq, _head.c.hash).where(_head.c.id == 1).with_for_update()
        )).one()
        link_entry(row, head.seq, head.hash)
        await conn.execute(
            update(_head).where(_head.c.id == 1).values(seq=row["seq"], hash=row["hash"])
        )
    await conn.execute(insert(_entries), [row])
    if conn.dialect.name == "sqlite":
        _HEADS[pool] = (row["seq"], row["hash"])
    return row


async def _append_postgres(conn: AsyncConnection,
                           rows: Sequence[tuple[Table, Mapping[str, Any]]],
                           row: dict[str, Any]) -> None:
    """PostgreSQL: the caller's rows first, as plain INSERTs (their column defaults as
    SQLAlchemy fills them), then the entry in one statement that takes the head row lock
    (`node.core.audit_pg_append`): the lock is held for that statement and the commit."""
    for table, values in rows:
        await conn.execute(insert(table), [dict(values)])
    await append_entry(conn, row)


def _insert(table: Table, values: Mapping[str, Any], dialect: Any) -> tuple[str, list[Any]]:
    """The fast writer's INSERT for one row, as SQLAlchemy writes it: the prepared layer's
    compiled statement, bind processors and Python-side column defaults."""
    shape = insert_shape(table, frozenset(values), dialect)
    return shape.sql, shape.params(values)


_GUARDED_HEAD = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ?"


async def record(
    db: Database,
    *,
    rows: Sequence[tuple[Table, Mapping[str, Any]]],
    ts: int,
    action: str,
    actor: Principal | None = None,
    target_type: str | None = None,
    target_id: str | uuid.UUID | None = None,
    outcome: str = "ok",
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Insert `rows` and their audit entry as one transaction of their own.

    The hot path of the node (logging an encounter); concurrent calls share a transaction
    (group commit). On SQLite, with the head this process wrote last, it is one round trip
    to the driver's thread (`_write_batch`: the guarded head update, the inserts, the
    entry, the commit; a moved head writes nothing). On PostgreSQL it joins the next group
    transaction (`node.core.audit_pg`: one head-row lock and update per group). Otherwise
    (a cold or moved SQLite head, a failed group) it is `append` inside `db.write()`."""
    entry = dict(ts=ts, action=action, actor=actor, target_type=target_type,
                 target_id=target_id, outcome=outcome, detail=detail)
    if db.is_sqlite and rows:
        done = await _record_sqlite(db, rows, entry)
        if done is not None:
            return done
    elif db.engine.dialect.name == "postgresql":
        done = await record_in_group(db, rows, entry_row(**entry))  # type: ignore[arg-type]
        if done is not None:
            return done
    async with db.write() as conn:
        return await append(conn, rows=rows, **entry)  # type: ignore[arg-type]


async def _record_sqlite(db: Database, rows: Sequence[tuple[Table, Mapping[str, Any]]],
                         entry: Mapping[str, Any]) -> dict[str, Any] | None:
    # Keyed as `append` keys it: by the pool `db.write()` transactions draw from.
    pool = db.write_engine.sync_engine.pool
    cached = _HEADS.get(pool)
    if cached is None:
        return None
    row = entry_row(**entry)
    link_entry(row, *cached)
    mine = (row["seq"], row["hash"])
    # Chain the next writer onto this entry now: batches run in queue order on one
    # connection, so concurrent writes pipeline like plain inserts. Each batch's guard is
    # checked in the database; if one fails, every batch chained after it fails too, writes
    # nothing, and goes the slow way.
    _HEADS[pool] = mine
    dialect = db.engine.dialect
    guard = (row["seq"], row["hash"], cached[0], cached[1])
    inserts = [_insert(t, v, dialect) for t, v in [*rows, (_entries, row)]]
    try:
        moved = await _group_commit(db, guard, inserts)
    except BaseException:
        if _HEADS.get(pool) == mine:
            _HEADS.pop(pool, None)
        raise
    if moved:
        if _HEADS.get(pool) == mine:
            _HEADS.pop(pool, None)
        return None  # the head was not where we chained; nothing was written
    return row


class _Group:
    """SQLite group commit: writes waiting for the driver thread, and the drain task.

    The loop queues each write on `pending` (a thread-safe queue). The drain holds the
    in-process writer queue (`Database.write_lock`) and gives the driver thread one job,
    `_run_groups`, that takes every write waiting, commits them as one transaction, hands
    their answers back to the loop, and goes on with what arrived meanwhile, without
    waiting for the loop in between. Each write still gets its answer only after the commit
    that holds it."""

    def __init__(self) -> None:
        self.pending: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self.running = False
        self.task: asyncio.Task[None] | None = None


_Item = tuple[tuple[Any, ...], list[tuple[str, list[Any]]], "asyncio.Future[bool]"]

# How long the driver thread waits for more writes after a group, in slices, before it
# hands the writer queue back (the next write then starts a new run). A closed-loop client
# sends its next write about a millisecond after its answer; without the wait each group
# began with the loop waking the thread again, while the writes piled up behind it.
_LINGER_S = 0.002
_LINGER_SLICES = 4
# Groups in one run at most, so the run gives way to the loop's own writers even when they
# do not count in `writers_waiting` (code holding the lock through a raw driver connection).
_MAX_RUN = 256


async def _group_commit(db: Database, guard: tuple[Any, ...],
                        inserts: list[tuple[str, list[Any]]]) -> bool:
    group: _Group | None = db.write_group
    if group is None:
        group = db.write_group = _Group()
    fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    group.pending.put((guard, inserts, fut))
    if not group.running:
        # The drain runs as its own task, so a cancelled request cannot stop the others'.
        group.running = True
        group.task = asyncio.create_task(_drain(db, group))
    # No shield: a cancelled caller cancels only its own future, which delivery skips.
    return await fut


async def _drain(db: Database, group: _Group) -> None:
    try:
        driver = await db.fast_writer()
        loop = asyncio.get_running_loop()
        while not group.pending.empty():
            # One job on aiosqlite's own queue for a whole run of groups, behind the
            # in-process writer queue: `db.write()` transactions run inline on the loop
            # and must not find this connection holding the database lock.
            async with db.write_lock():
                await driver._execute(_run_groups, driver._conn, db, group.pending, loop)
    finally:
        group.running = False
        while not group.pending.empty():  # only when the drain itself failed: the slow way
            _, _, f = group.pending.get_nowait()
            if not f.done():
                f.set_result(True)


def _run_groups(conn: sqlite3.Connection, db: Database, pending: queue.SimpleQueue[_Item],
                loop: asyncio.AbstractEventLoop) -> None:
    """Runs on the driver thread, holding the writer queue: group after group until no
    write comes for `_LINGER_S` or a writer waits for the queue (`writers_waiting`). Each
    group's answers go to the loop as soon as it commits."""
    for _ in range(_MAX_RUN):
        batch = _take(pending, db)
        if not batch:
            return
        try:
            moved: list[bool] | None = _write_group(conn, [(g, i) for g, i, _ in batch])
            failed: Exception | None = None
        except Exception as exc:  # noqa: BLE001 - each write of the group gets it
            moved, failed = None, exc
        try:
            loop.call_soon_threadsafe(_deliver, db, batch, moved, failed)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return
        if db.writers_waiting:
            return


def _take(pending: queue.SimpleQueue[_Item], db: Database) -> list[_Item]:
    """Every write waiting, after waiting up to `_LINGER_S` for the first; empty when none
    came or a writer queued for the lock meanwhile."""
    first: _Item | None = None
    for _ in range(_LINGER_SLICES):
        try:
            first = pending.get(timeout=_LINGER_S / _LINGER_SLICES)
            break
        except queue.Empty:
            if db.writers_waiting:
                return []
    if first is None:
        return []
    batch = [first]
    while True:
        try:
            batch.append(pending.get_nowait())
        except queue.Empty:
            return batch


def _deliver(db: Database, batch: list[_Item], moved: list[bool] | None,
             failed: Exception | None) -> None:
    """On the loop: each write's answer (True: the head had moved, go the slow way)."""
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


def _write_group(conn: sqlite3.Connection,
                 items: list[tuple[tuple[Any, ...], list[tuple[str, list[Any]]]]]) -> list[bool]:
    """Runs on the driver thread: the writes of a group in one transaction. Each item's
    guard chains on the one before, so if the first finds the head moved nothing is written
    and every item goes the slow way (True). If any statement fails, the group is rolled
    back and its items run one by one, so one bad write cannot fail the others.

    When the guards form one unbroken chain (the usual case), the group moves the head
    once, from the first item's expected head to the last item's entry, and inserts each
    table's rows with one `executemany` (fewer calls on this thread, each of which hands
    the GIL back and forth with the event loop)."""
    if len(items) == 1:
        return [_write_batch(conn, *items[0])]
    cur = conn.cursor()
    try:
        _begin_immediate(cur)
        if _unbroken(items):
            first, last = items[0][0], items[-1][0]
            cur.execute(_GUARDED_HEAD, (last[0], last[1], first[2], first[3]))
            if cur.rowcount != 1:
                conn.rollback()
                return [True] * len(items)
            by_sql: dict[str, list[list[Any]]] = {}
            for _, inserts in items:  # tables in first-named order: a follow-up after its
                for sql, params in inserts:  # encounter, the entries last
                    by_sql.setdefault(sql, []).append(params)
            for sql, many in by_sql.items():
                _insert_rows(cur, sql, many)
            conn.commit()
            return [False] * len(items)
        for i, (guard, inserts) in enumerate(items):
            cur.execute(_GUARDED_HEAD, guard)
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
            out.append(_write_batch(conn, guard, inserts))
        except Exception:
            out.append(True)  # this one goes the slow way and reports its own error
    return out


def _insert_rows(cur: sqlite3.Cursor, sql: str, many: list[list[Any]]) -> None:
    """The rows of one INSERT as multi-row statements (`many_rows_sql`): one step each
    instead of one per row. Each step hands the GIL back and forth with the event loop,
    which is the program's bottleneck; the rows, their order and their errors are those of
    `executemany`."""
    per = max(1, _MAX_VARIABLES // max(1, len(many[0])))
    for start in range(0, len(many), per):
        chunk = many[start:start + per]
        if len(chunk) == 1:
            cur.execute(sql, chunk[0])
        else:
            cur.execute(many_rows_sql(sql, len(chunk)), [v for row in chunk for v in row])


_MAX_VARIABLES = 32766  # SQLITE_MAX_VARIABLE_NUMBER's default since SQLite 3.32


def _unbroken(items: list[tuple[tuple[Any, ...], list[tuple[str, list[Any]]]]]) -> bool:
    """Each guard (new seq, new hash, old seq, old hash) expects the head the one before
    it writes."""
    return all(items[i][0][2:4] == items[i - 1][0][0:2] for i in range(1, len(items)))


def _begin_immediate(cur: sqlite3.Cursor) -> None:
    # The connection issues no implicit BEGIN (federation.database): take the write lock
    # first, so the guard's check and the writes are one atomic step.
    if not cur.connection.in_transaction:
        cur.execute("BEGIN IMMEDIATE")


def _write_batch(conn: sqlite3.Connection, guard: tuple[Any, ...],
                 inserts: list[tuple[str, list[Any]]]) -> bool:
    """Runs on the driver thread: the guarded head update, the inserts, the commit, as one
    transaction. True when the head had moved and nothing was written."""
    cur = conn.cursor()
    try:
        _begin_immediate(cur)
        cur.execute(_GUARDED_HEAD, guard)
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


async def head_moved(conn: AsyncConnection) -> bool:
    """True when the head moved past its signature (a plain read: the signer's cheap check)."""
    head = (await conn.execute(
        select(_head.c.seq, _head.c.hash, _head.c.signed_seq, _head.c.signed_hash)
        .where(_head.c.id == 1)
    )).one_or_none()
    return head is not None and (head.signed_seq, head.signed_hash) != (head.seq, head.hash)


async def sign_head(conn: AsyncConnection, keys: NodeKeys, node_id: str, now_ms: int) -> bool:
    """Sign the current head (its own seq and hash, the node id and the time) if it moved
    since the last signature; True when it signed."""
    await link_now(conn)  # PostgreSQL: this transaction's staged entries are in the head
    head = (await conn.execute(select(_head).where(_head.c.id == 1).with_for_update())).one()
    if head.signed_seq == head.seq and head.signed_hash == head.hash:
        return False
    sig = sign_head_bytes(keys.signing_key, node_id, head.seq, head.hash, now_ms)
    await conn.execute(update(_head).where(_head.c.id == 1).values(
        signed_seq=head.seq, signed_hash=head.hash, signed_at=now_ms, key_id=keys.key_id,
        signature=b64u(sig),
    ))
    return True


def detail_of(row: Mapping[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(row["detail"])
    return value
