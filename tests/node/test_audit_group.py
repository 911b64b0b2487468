"""Group commit of encounter writes on both engines (issue 16 item 1): concurrent writes
share one transaction and one head update (PostgreSQL: `node.core.audit_pg`; SQLite:
`node.core.audit_sqlite`), a failing write falls back alone and changes nothing, and
the hash chain, the signed head and the tamper checks hold for group-written entries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from federation.database import make_engine, migrate
from node.core import audit, audit_pg, audit_sqlite
from node.core.audit_verify import AuditReport, verify
from node.core.db import AuditEntry, AuditHead, Database, table_of
from protocol.encoding import sha256_b64u
from tests.node.conftest import MakeNode, Node, encounter

_entries = table_of(AuditEntry)
_head = table_of(AuditHead)
_META = sa.MetaData()
_ITEMS = sa.Table(
    "group_items", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(20), nullable=False),
    sa.Column("added", sa.Integer, nullable=False, default=7),
)


async def _verify(node: Node) -> AuditReport:
    async with node.ctx.db.write() as conn:
        await audit.sign_head(conn, node.keys, node.settings.node_id, node.clock.now_ms())
    async with node.ctx.db.read() as conn:
        return await verify(conn, node.keys, node.settings.node_id, now_ms=node.clock.now_ms(),
                            sign_interval_ms=node.settings.audit_sign_interval_s * 1000)


def _group_sizes(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every group transaction written from now on, on either engine."""
    sizes: list[int] = []
    if db.is_sqlite:
        real = audit_sqlite.write_group

        def counting(conn: Any, items: Any, *rest: Any) -> list[bool]:
            sizes.append(len(items))
            return real(conn, items, *rest)

        monkeypatch.setattr(audit_sqlite, "write_group", counting)
    else:
        real_pg = audit_pg._write_group

        async def counting_pg(db: Database, group: Any, batch: Any) -> Any:
            sizes.append(len(batch))
            return await real_pg(db, group, batch)

        monkeypatch.setattr(audit_pg, "_write_group", counting_pg)
    return sizes


async def test_concurrent_encounter_writes_share_one_transaction(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await make_node()
    await node.post("sup1", "/api/v1/encounters", encounter())  # SQLite: warms the head
    before = await node.count("audit_log")
    sizes = _group_sizes(node.ctx.db, monkeypatch)
    results = await asyncio.gather(*[
        node.post("sup1", "/api/v1/encounters", encounter(recipient=f"R{i}")) for i in range(32)
    ])
    assert [s for s, _ in results] == [201] * 32
    assert sum(sizes) == 32 and max(sizes) > 1, sizes  # several writes per transaction
    group = node.ctx.db.write_group
    if isinstance(group, audit_pg.PgGroup):  # all in groups, chained on the known head
        assert sum(group.sizes) == 33 and group.locked <= 1, (group.sizes, group.locked)
    assert await node.count("encounters") == 33
    assert await node.count("audit_log") == before + 32
    rep = await _verify(node)
    assert rep.ok, rep


async def _add_refusing_trigger(db: Database) -> None:
    """The database itself refuses one encounter (incident_ref 'REFUSED'), as a constraint
    added by an operator or a broken row would: the write fails at its INSERT."""
    async with db.write() as conn:
        if db.is_sqlite:
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON encounters "
                "WHEN NEW.incident_ref = 'REFUSED' BEGIN SELECT RAISE(ABORT, 'refused'); END")
        else:
            await conn.exec_driver_sql(
                "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.incident_ref = 'REFUSED' THEN RAISE EXCEPTION 'refused' "
                "USING ERRCODE = '23514'; END IF; RETURN NEW; END $$")
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON encounters "
                "FOR EACH ROW EXECUTE FUNCTION refuse_one()")


async def test_one_failing_write_in_a_group_fails_alone_through_the_api(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await make_node()
    await node.post("sup1", "/api/v1/encounters", encounter())
    await _add_refusing_trigger(node.ctx.db)
    before = await node.count("audit_log")
    sizes = _group_sizes(node.ctx.db, monkeypatch)
    bodies = [encounter(recipient=f"R{i}", incident_ref="REFUSED" if i == 5 else f"C-{i}")
              for i in range(12)]
    results = await asyncio.gather(*[node.post("sup1", "/api/v1/encounters", b)
                                     for b in bodies])
    statuses = [s for s, _ in results]
    assert statuses == [201] * 5 + [500] + [201] * 6, statuses
    assert results[5][1]["error"]["code"] == "internal"  # as it answers alone
    assert max(sizes) > 1  # it was in a group with others
    # Nothing of the refused write is stored: no row, no entry; the others all are.
    async with node.ctx.db.read() as conn:
        refs = set((await conn.execute(sa.text("SELECT incident_ref FROM encounters"))).scalars())
    assert "REFUSED" not in refs and {f"C-{i}" for i in range(12) if i != 5} <= refs
    assert await node.count("audit_log") == before + 11
    rep = await _verify(node)
    assert rep.ok, rep
    # Alone, the same write gets the same answer.
    status, body = await node.post("sup1", "/api/v1/encounters", bodies[5])
    assert (status, body["error"]["code"]) == (500, "internal")
    assert await node.count("audit_log") == before + 11


async def test_tampering_with_a_group_written_entry_is_caught(make_node: MakeNode) -> None:
    node = await make_node()
    results = await asyncio.gather(*[
        node.post("sup1", "/api/v1/encounters", encounter(recipient=f"R{i}")) for i in range(16)
    ])
    assert {s for s, _ in results} == {201}
    assert (await _verify(node)).ok
    async with node.ctx.db.write() as conn:
        await conn.execute(sa.update(_entries).where(_entries.c.seq == 9)
                           .values(detail='{"forged":1}'))
    async with node.ctx.db.read() as conn:
        rep = await verify(conn, node.keys, node.settings.node_id, now_ms=node.clock.now_ms(),
                           sign_interval_ms=node.settings.audit_sign_interval_s * 1000)
    assert (rep.ok, rep.problem, rep.first_broken) == (False, "altered", 9)


@pytest.fixture
async def two_dbs(db_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two handles on one database: two node processes over one server (or one file)."""
    one, two = Database(make_engine(db_url)), Database(make_engine(db_url))
    await migrate(one.engine, "node:migrations")
    async with one.write() as conn:
        await conn.run_sync(_META.create_all)
    yield one, two
    await one.dispose()
    await two.dispose()


async def _chain(db: Database) -> list[Any]:
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(_entries).order_by(_entries.c.seq))).mappings().all()
        top = (await conn.execute(sa.select(_head.c.seq, _head.c.hash))).one()
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))
    assert all(r["hash"] == sha256_b64u(audit.entry_bytes(r)) for r in rows)
    assert (top.seq, top.hash) == (rows[-1]["seq"], rows[-1]["hash"])
    return list(rows)


async def test_two_processes_writing_groups_keep_one_chain(
    two_dbs: tuple[Database, Database]
) -> None:
    one, two = two_dbs

    async def write(db: Database, i: int) -> None:
        await audit.record(db, rows=[(_ITEMS, {"id": i, "name": f"n{i}"})], ts=1,
                           action="item.create")

    await asyncio.gather(*[write(one if i % 2 else two, i) for i in range(60)])
    rows = await _chain(one)
    assert len(rows) == 60
    async with one.read() as conn:
        stored = (await conn.execute(sa.select(_ITEMS.c.id, _ITEMS.c.added))).all()
    assert sorted(stored) == [(i, 7) for i in range(60)]


async def test_a_failed_write_raises_its_own_error_and_the_group_lands(
    two_dbs: tuple[Database, Database]
) -> None:
    db, _ = two_dbs
    await audit.record(db, rows=[(_ITEMS, {"id": 0, "name": "warm"})], ts=1, action="item")
    results = await asyncio.gather(*[
        audit.record(db, rows=[(_ITEMS, {"id": i, "name": None if i == 3 else f"g{i}"})],
                     ts=1, action="item") for i in range(1, 9)
    ], return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["dict"] * 2 + ["IntegrityError"] + ["dict"] * 5
    assert isinstance(results[2], IntegrityError)
    rows = await _chain(db)
    assert len(rows) == 8  # warm + the 7 good ones; the bad one left no entry
    async with db.read() as conn:
        ids = sorted((await conn.execute(sa.select(_ITEMS.c.id))).scalars())
    assert ids == [0, 1, 2, 4, 5, 6, 7, 8]


def test_an_unbroken_group_moves_the_head_once_and_a_broken_one_goes_item_by_item(
    tmp_path: Any,
) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    conn.execute("CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq INTEGER, hash TEXT)")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.execute("INSERT INTO audit_head VALUES (1, 0, 'h0')")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)

    def item(seq: int, prev: int, prev_hash: str | None = None) -> Any:
        guard = (seq, f"h{seq}", prev, prev_hash or f"h{prev}")
        return guard, [("INSERT INTO t VALUES (?)", [seq])]

    assert audit_sqlite.write_group(conn, [item(1, 0), item(2, 1), item(3, 2)]) == [False] * 3
    assert sum(s.startswith("UPDATE audit_head") for s in statements) == 1
    assert conn.execute("SELECT seq, hash FROM audit_head").fetchone() == (3, "h3")
    assert [r[0] for r in conn.execute("SELECT id FROM t ORDER BY id")] == [1, 2, 3]

    # The second item does not chain on the first: the first lands, the rest go slow.
    out = audit_sqlite.write_group(conn, [item(4, 3), item(5, 99, "hx"), item(6, 5)])
    assert out == [False, True, True]
    assert conn.execute("SELECT seq, hash FROM audit_head").fetchone() == (4, "h4")
    assert [r[0] for r in conn.execute("SELECT id FROM t ORDER BY id")] == [1, 2, 3, 4]

    # A head moved by someone else: nothing of the group is written.
    assert audit_sqlite.write_group(conn, [item(6, 5), item(7, 6)]) == [True, True]
    assert [r[0] for r in conn.execute("SELECT id FROM t ORDER BY id")] == [1, 2, 3, 4]
    conn.close()


def test_a_group_inserts_each_tables_rows_in_one_statement_and_chunks_at_the_limit(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One step per table, not one per row (each step hands the GIL to the event loop and
    back); the rows and their order are those of one INSERT per row, and a group larger
    than SQLite's variable limit is cut into several statements."""
    import sqlite3

    conn = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    conn.execute("CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq INTEGER, hash TEXT)")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER, v TEXT)")
    conn.execute("INSERT INTO audit_head VALUES (1, 0, 'h0')")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)

    def item(seq: int) -> Any:
        guard = (seq, f"h{seq}", seq - 1, f"h{seq - 1}")
        return guard, [("INSERT INTO t (id, v) VALUES (?, ?)", [seq, f"v{seq}"])]

    assert audit_sqlite.write_group(conn, [item(i) for i in range(1, 8)]) == [False] * 7
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert inserts == ["INSERT INTO t (id, v) VALUES " + ", ".join(  # values as traced
        f"({i}, 'v{i}')" for i in range(1, 8))], inserts
    assert conn.execute("SELECT id, v FROM t ORDER BY n").fetchall() == [
        (i, f"v{i}") for i in range(1, 8)]

    statements.clear()
    monkeypatch.setattr(audit_sqlite, "MAX_VARIABLES", 6)  # 3 rows of 2 values per statement
    assert audit_sqlite.write_group(conn, [item(i) for i in range(8, 15)]) == [False] * 7
    assert sum(s.startswith("INSERT") for s in statements) == 3  # 3 + 3 + 1 rows
    assert [r[0] for r in conn.execute("SELECT id FROM t ORDER BY n")] == list(range(1, 15))
    conn.close()


def test_many_rows_sql_refuses_what_is_not_a_one_row_values_insert() -> None:
    from federation.prepared import many_rows_sql

    assert many_rows_sql("INSERT INTO t (a, b) VALUES (?, ?)", 3) == (
        "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)")
    for bad in ("INSERT INTO t (a) SELECT 1", "INSERT INTO t (a) VALUES (lower(?))",
                "INSERT INTO t (a) VALUES (?) RETURNING a"):
        with pytest.raises(ValueError, match="one-row"):
            many_rows_sql(bad, 2)
