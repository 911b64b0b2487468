"""The documented restore point does not open a way to cut the audit log silently: a
`node.restore` entry written before the hub's anchor was signed, or one that does not
follow the head it names, leaves `audit verify` failing `behind_anchor`; one that
qualifies makes verify pass and name the restore every time. Real hub, node and CLI;
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from node.core import audit
from node.core.db import AuditEntry, AuditHead, table_of
from node.web.audit_anchor import anchor_once
from tests.ops.helpers import OpsNet, cli, make_ops_net

_entries = table_of(AuditEntry)
_head = table_of(AuditHead)


@pytest.fixture
async def ops(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> Any:
    o = await make_ops_net(tmp_path, db_url, request)
    try:
        yield o
    finally:
        await o.net.close()


async def _sign(ops: OpsNet) -> None:
    async with ops.node.db.write() as conn:
        await audit.sign_head(conn, ops.node.keys, ops.node.node_id, ops.net.clock.now_ms())


async def _cut_and_mark(ops: OpsNet, keep: int, *, ts: int, restored: int) -> None:
    """Cut the log back to entry `keep`, then append a `node.restore` entry naming
    `restored` as the head it restored, and sign."""
    node = ops.node
    async with node.db.write() as conn:
        row = (await conn.execute(select(_entries.c.hash).where(_entries.c.seq == keep))).one()
        await conn.execute(delete(_entries).where(_entries.c.seq > keep))
        await conn.execute(update(_head).values(seq=keep, hash=row.hash))
    audit._HEADS.clear()  # the process's cached head is stale after the raw cut
    async with node.db.write() as conn:
        await audit.append(conn, ts=ts, action="node.restore", target_type="backup",
                           target_id="01TEST", detail={"backup_ts": ts, "restored_seq": restored,
                                                       "restored_hash": row.hash})
    await _sign(ops)


async def test_only_a_restore_after_the_anchor_explains_it(ops: OpsNet) -> None:
    node, net = ops.node, ops.net
    for i in range(20):
        async with node.db.write() as conn:
            await audit.append(conn, ts=net.clock.now_ms(), action="encounter.create",
                               detail={"i": i})
    await _sign(ops)
    assert node.app is not None and await anchor_once(node.app)
    await net.settle()
    anchored = await _scalar(ops, select(_head.c.signed_seq))
    code, out = await cli("audit", "verify", "--config", str(ops.cfg))
    assert code == 0 and f"hub anchor at entry {anchored} matches" in out, out

    # A "restore" dated before the anchor was signed: still a cut log.
    await _cut_and_mark(ops, 10, ts=net.clock.now_ms() - 60_000, restored=10)
    code, out = await cli("audit", "verify", "--config", str(ops.cfg))
    assert code == 1 and "(behind_anchor)" in out, out
    # One that does not follow the head it names: still a cut log.
    await _cut_and_mark(ops, 10, ts=net.clock.now_ms() + 1, restored=9)
    code, out = await cli("audit", "verify", "--config", str(ops.cfg))
    assert code == 1 and "(behind_anchor)" in out, out
    # A restore recorded after the anchor, right after the head it restored: accepted,
    # and said.
    await _cut_and_mark(ops, 10, ts=net.clock.now_ms() + 1, restored=10)
    code, out = await cli("audit", "verify", "--config", str(ops.cfg))
    assert code == 0, out
    assert "documented restore point" in out and "restore recorded at entry 11" in out, out
    assert f"entries 11 to {anchored} of the earlier history" in out, out


async def _scalar(ops: OpsNet, stmt: Any) -> Any:
    async with ops.node.db.read() as conn:
        return (await conn.execute(stmt)).scalar_one()
