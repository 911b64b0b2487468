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
transaction and one head update. SQLite: each group is gathered and written inline on the
loop (`node.core.audit_sqlite`). PostgreSQL: one statement per group that links its entries
in the database under the head row lock (`node.core.audit_pg`; two groups in flight). A
failing write in a group changes nothing and is retried alone, so only it fails, with the
error it has alone.

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

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.keystore import NodeKeys
from federation.prepared import insert_shape
from node.core.access import Principal
from node.core.audit_entry import LAST_HEADS, entry_bytes, entry_row, link_entry
from node.core.audit_pg import record_in_group
from node.core.audit_pg_append import append_entry
from node.core.audit_sqlite import group_commit
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
    (group commit). On SQLite, with the head this process wrote last, it joins the next
    group written inline on the loop (`node.core.audit_sqlite`: the guarded head update,
    the inserts, the entries, the commit; a moved head writes nothing). On PostgreSQL it
    joins the next group transaction (`node.core.audit_pg`: one head-row lock and update
    per group). Otherwise (a cold or moved SQLite head, a failed group, no inline
    connection) it is `append` inside `db.write()`."""
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
        moved = await group_commit(db, guard, inserts)
    except BaseException:
        if _HEADS.get(pool) == mine:
            _HEADS.pop(pool, None)
        raise
    if moved is not False:  # the head was not where we chained, or no inline connection:
        if _HEADS.get(pool) == mine:  # nothing was written
            _HEADS.pop(pool, None)
        return None
    return row


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
