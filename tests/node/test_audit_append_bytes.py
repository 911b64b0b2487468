"""The PostgreSQL append hashes its entry in the database (`node.core.audit_pg_append`):
the bytes it hashes are exactly `entry_bytes` of the stored row, whatever the entry holds
(quotes, the key names themselves inside values, non-ASCII, control characters); checked
on both engines through `append` and by recomputing every hash in Python."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.database import make_engine, migrate
from node.core import audit
from node.core.audit_entry import entry_bytes, entry_row, link_entry
from node.core.audit_pg_append import hash_parts
from node.core.db import AuditEntry, Database, table_of
from protocol.encoding import sha256_b64u

_entries = table_of(AuditEntry)
_TRICKY = ['"prev":""', ',"seq":0,', 'é\u2028"\\', "\x01\n", "", "x" * 40]


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(make_engine(db_url))
    await migrate(database.engine, "node:migrations")
    yield database
    await database.dispose()


async def test_tricky_entries_chain_and_verify(db: Database) -> None:
    for i, value in enumerate(_TRICKY):
        async with db.write() as conn:
            await audit.append(conn, ts=i, action=value[:40], target_type=value[:20],
                               target_id=value[:64], detail={"v": value, "prev": value})
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(_entries).order_by(_entries.c.seq))).mappings().all()
    assert [r["seq"] for r in rows] == list(range(1, len(_TRICKY) + 1))
    for a, b in zip(rows, rows[1:], strict=False):
        assert b["prev_hash"] == a["hash"]
    assert all(r["hash"] == sha256_b64u(entry_bytes(r)) for r in rows)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=30), seq=st.integers(0, 2**40))
def test_the_parts_around_prev_and_seq_rebuild_the_bytes(text: str, seq: int) -> None:
    row = entry_row(seq, text[:40], None, text[:20], text, text[:10], {"prev": text, "s": seq})
    link_entry(row, seq, "h" + text[:5].encode("utf-8", "replace").hex())
    a, b, c = hash_parts(row)
    prev = row["prev_hash"].encode()
    assert a + prev + b + str(row["seq"]).encode() + c == entry_bytes(row)
