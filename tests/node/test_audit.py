from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from node.core import audit, audit_sqlite
from node.core.audit_verify import AuditReport, verify
from protocol.encoding import sha256_b64u
from tests.node.conftest import MakeNode, Node, encounter


async def _log_some(node: Node, n: int = 4) -> None:
    for i in range(n):
        status, _ = await node.post("sup1", "/api/v1/encounters", encounter(recipient=f"E-{i}"))
        assert status == 201


async def _verify(node: Node) -> AuditReport:
    async with node.ctx.db.read() as conn:
        return await verify(conn, node.keys, node.settings.node_id, now_ms=node.clock.now_ms(),
                            sign_interval_ms=node.settings.audit_sign_interval_s * 1000)


async def _sql(node: Node, *statements: str, **params: Any) -> None:
    async with node.ctx.db.write() as conn:
        for s in statements:
            await conn.execute(text(s), params)


async def test_intact_chain_verifies_and_signed_head_checks(make_node: MakeNode) -> None:
    node = await make_node()
    await _log_some(node)
    async with node.ctx.db.write() as conn:
        assert await audit.sign_head(conn, node.keys, node.settings.node_id, node.clock.now_ms())
    rep = await _verify(node)
    assert rep.ok and rep.entries == rep.head_seq == rep.signed_seq, rep


@pytest.mark.parametrize("tamper", ["edit", "edit_rehash", "delete", "reorder"])
async def test_tampering_names_the_first_broken_link(make_node: MakeNode, tamper: str) -> None:
    node = await make_node()
    await _log_some(node)
    target = 10  # somewhere in the middle (users and tokens were audited first)
    if tamper == "edit":
        await _sql(node, "UPDATE audit_log SET action = 'nothing.happened' WHERE seq = :s",
                   s=target)
        expected = (target, "altered")
    elif tamper == "edit_rehash":
        async with node.ctx.db.write() as conn:
            row = (await conn.execute(text("SELECT * FROM audit_log WHERE seq = :s"),
                                      {"s": target})).mappings().one()
            forged = dict(row, outcome="refused")
            await conn.execute(text("UPDATE audit_log SET outcome = 'refused', hash = :h "
                                    "WHERE seq = :s"),
                               {"h": sha256_b64u(audit.entry_bytes(forged)), "s": target})
        expected = (target + 1, "broken_link")
    elif tamper == "delete":
        await _sql(node, "DELETE FROM audit_log WHERE seq = :s", s=target)
        expected = (target, "missing")
    else:
        await _sql(node,
                   "UPDATE audit_log SET seq = -1 WHERE seq = :s",
                   "UPDATE audit_log SET seq = :s WHERE seq = :s + 1",
                   "UPDATE audit_log SET seq = :s + 1 WHERE seq = -1", s=target)
        expected = (target, "altered")
    rep = await _verify(node)
    assert not rep.ok
    assert (rep.first_broken, rep.problem) == expected, rep
    status, body = await node.get("audit", "/api/v1/audit/verify")
    assert status == 200 and body["first_broken"] == expected[0]


async def test_cutting_the_tail_is_caught_by_the_signed_head(make_node: MakeNode) -> None:
    node = await make_node()
    await _log_some(node)
    async with node.ctx.db.write() as conn:
        await audit.sign_head(conn, node.keys, node.settings.node_id, node.clock.now_ms())
    rep = await _verify(node)
    last = rep.head_seq
    async with node.ctx.db.write() as conn:
        prev = (await conn.execute(text("SELECT hash FROM audit_log WHERE seq = :s"),
                                   {"s": last - 1})).scalar_one()
        await conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": last})
        await conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"),
                           {"s": last - 1, "h": prev})
    rep = await _verify(node)
    assert (rep.ok, rep.first_broken, rep.problem) == (False, last, "missing")


async def test_forged_head_signature_is_refused(make_node: MakeNode) -> None:
    node = await make_node()
    await _log_some(node, 1)
    async with node.ctx.db.write() as conn:
        await audit.sign_head(conn, node.keys, node.settings.node_id, node.clock.now_ms())
    await _sql(node, "UPDATE audit_head SET signed_at = signed_at + 1")
    rep = await _verify(node)
    assert (rep.ok, rep.problem) == (False, "bad_signature")


async def test_concurrent_writers_keep_one_chain(make_node: MakeNode) -> None:
    node = await make_node()
    status, first = await node.post("sup1", "/api/v1/encounters", encounter())
    writes = [node.post(f"sup{1 + i % 2}", "/api/v1/encounters", encounter(recipient=f"R{i}"))
              for i in range(24)]
    # refused and audited reads go through the other (locked) write path meanwhile
    reads = [node.get("sup2", f"/api/v1/encounters/{first['id']}") for _ in range(6)]
    results = await asyncio.gather(*writes, *reads)
    assert [s for s, _ in results] == [201] * 24 + [403] * 6
    rep = await _verify(node)
    assert rep.ok, rep
    assert await node.count("encounters") == 25


async def test_another_process_appending_does_not_fork_the_chain(
    make_node: MakeNode, db_url: str
) -> None:
    from federation.database import make_engine
    from node.core.db import Database

    node = await make_node()
    await _log_some(node, 1)  # this process now remembers the head
    other = Database(make_engine(db_url))  # a second engine stands in for the CLI process
    try:
        async with other.write() as conn:
            await audit.append(conn, ts=node.clock.now_ms(), action="retention.purge",
                               detail={"count": 0, "days": 30})
    finally:
        await other.dispose()
    await _log_some(node, 2)
    rep = await _verify(node)
    assert rep.ok, rep


async def test_concurrent_writes_share_commits_and_keep_the_chain(
    make_node: MakeNode, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await make_node()
    sizes: list[int] = []
    real = audit_sqlite.write_group

    def counting(conn: Any, items: Any, *rest: Any) -> list[bool]:
        sizes.append(len(items))
        return real(conn, items, *rest)

    monkeypatch.setattr(audit_sqlite, "write_group", counting)
    await node.post("sup1", "/api/v1/encounters", encounter())  # warms the head cache
    results = await asyncio.gather(*[
        node.post("sup1", "/api/v1/encounters", encounter(recipient=f"R{i}")) for i in range(40)
    ])
    assert [s for s, _ in results] == [201] * 40
    assert await node.count("encounters") == 41
    rep = await _verify(node)
    assert rep.ok, rep
    if db_url.startswith("sqlite"):
        assert sum(sizes) >= 40  # the first write may warm the head cache the slow way
        assert max(sizes) > 1  # several writes went in one transaction


def test_one_failing_write_in_a_group_does_not_fail_the_others(tmp_path: Any) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "g.db", isolation_level="IMMEDIATE")
    conn.execute("CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq INTEGER, hash TEXT)")
    conn.execute("CREATE TABLE t (x INTEGER NOT NULL)")
    conn.execute("INSERT INTO audit_head VALUES (1, 0, 'h0')")
    conn.commit()
    ins = "INSERT INTO t (x) VALUES (?)"
    items = [
        ((1, "h1", 0, "h0"), [(ins, [1])]),
        ((2, "h2", 1, "h1"), [(ins, [None])]),  # NOT NULL: this write fails
        ((3, "h3", 2, "h2"), [(ins, [3])]),  # chained on the failed one
    ]
    # The first is written; the failed one and the one chained on it go the slow way.
    assert audit_sqlite.write_group(conn, items) == [False, True, True]
    assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert conn.execute("SELECT seq, hash FROM audit_head").fetchone() == (1, "h1")
    # A head moved by someone else: nothing written, all go the slow way.
    assert audit_sqlite.write_group(conn, items) == [True, True, True]
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
