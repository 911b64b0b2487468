"""Audit appends inside a caller's transaction are linked at its commit on PostgreSQL
(`node.core.audit_staged`, issue 16): an open transaction that has appended does not hold
the audit head, so encounter groups and other transactions' appends go on meanwhile; its
entry is linked after whatever committed first, commits or rolls back with it, and the
chain rehashes in Python. SQLite (one writer at a time) keeps its chain the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from federation.database import make_engine, migrate
from node.core import audit
from node.core.audit_entry import entry_bytes
from node.core.audit_staged import AuditStaged
from node.core.db import GENESIS_HASH, AuditEntry, AuditHead, Database, table_of
from protocol.encoding import sha256_b64u

_entries = table_of(AuditEntry)
_head = table_of(AuditHead)
_staged = table_of(AuditStaged)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(make_engine(db_url))
    await migrate(database.engine, "node:migrations")
    yield database
    await database.dispose()


async def _chain(db: Database) -> list[str]:
    """The actions in chain order, after checking every link and hash and the head."""
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(_entries).order_by(_entries.c.seq))).mappings().all()
        head = (await conn.execute(sa.select(_head.c.seq, _head.c.hash))).one()
        staged = (await conn.execute(sa.select(sa.func.count()).select_from(_staged))).scalar()
    prev = GENESIS_HASH
    for i, r in enumerate(rows, 1):
        assert (r["seq"], r["prev_hash"]) == (i, prev)
        assert r["hash"] == sha256_b64u(entry_bytes(r))
        prev = r["hash"]
    assert (head.seq, head.hash) == (len(rows), prev) and staged == 0
    return [r["action"] for r in rows]


async def test_an_open_transactions_append_does_not_hold_the_head(db: Database) -> None:
    if db.is_sqlite:  # one writer at a time: the same entries, one after the other
        async with db.write() as conn:
            await audit.append(conn, ts=1, action="activation.request")
        await audit.record(db, rows=[], ts=2, action="encounter.create")
        assert await _chain(db) == ["activation.request", "encounter.create"]
        return
    async with db.write() as conn:
        await audit.append(conn, ts=1, action="activation.request")
        # While this transaction is open (its entry staged), an encounter group and another
        # transaction's append commit: neither waits for it.
        async with asyncio.timeout(10):
            await audit.record(db, rows=[], ts=2, action="encounter.create")
            async with db.write() as other:
                await audit.append(other, ts=3, action="activation.cancel")
    # Linked at its commit, after the two that committed first.
    assert await _chain(db) == ["encounter.create", "activation.cancel", "activation.request"]


async def test_a_rolled_back_append_leaves_nothing(db: Database) -> None:
    await audit.record(db, rows=[], ts=1, action="encounter.create")
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await audit.append(conn, ts=2, action="activation.request")
            await audit.append(conn, ts=3, action="activation.cancel")
            raise RuntimeError("the caller's change failed")
    assert await _chain(db) == ["encounter.create"]


async def test_entries_of_one_transaction_keep_their_order_and_sign_in_it(
        db: Database) -> None:
    from federation.keystore import NodeKeys

    keys = NodeKeys.generate()
    async with db.write() as conn:
        for i, action in enumerate(["a.one", "a.two", "a.three"]):
            await audit.append(conn, ts=i, action=action)
        # Signing in the same transaction signs the head with its entries linked.
        assert await audit.sign_head(conn, keys, "agency-1", 10)
    assert await _chain(db) == ["a.one", "a.two", "a.three"]
    async with db.read() as conn:
        head = (await conn.execute(sa.select(_head.c.seq, _head.c.signed_seq))).one()
    assert head.seq == head.signed_seq == 3
