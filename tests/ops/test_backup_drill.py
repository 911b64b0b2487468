"""Issue 18 item 3, the drill: a real node serving under write load is backed up with the
real CLI, wiped, restored, and then `peernet node audit verify` passes against the hub's
anchor (which is ahead of the restored log: a documented restore point) and the federation
resumes with nothing delivered twice and nothing lost that was acknowledged before the
backup. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bench.reliability_report import record
from federation.store import OutboxState, outbox
from node.core import audit
from node.web.audit_anchor import anchor_once
from tests.federation.helpers import TEST_TYPE, Recorder, send
from tests.ops.helpers import OpsNet, cli, make_ops_net, post_encounter, scalar, wipe


@pytest.fixture
async def ops(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> Any:
    o = await make_ops_net(tmp_path, db_url, request)
    try:
        yield o
    finally:
        await o.net.close()


async def _outbox_state(ops: OpsNet, msg_id: str) -> str:
    async with ops.node.db.read() as conn:
        return str((await conn.execute(select(outbox.c.state).where(
            outbox.c.msg_id == msg_id))).scalar_one())


async def _sign_and_anchor(ops: OpsNet) -> None:
    async with ops.node.db.write() as conn:
        await audit.sign_head(conn, ops.node.keys, ops.node.node_id, ops.net.clock.now_ms())
    assert ops.node.app is not None
    assert await anchor_once(ops.node.app)
    await ops.net.settle()


async def test_backup_under_load_wipe_restore_verify_and_resume(ops: OpsNet,
                                                                tmp_path: Path) -> None:
    node, peer, net = ops.node, ops.peer, ops.net
    seen = Recorder()
    peer.on(TEST_TYPE, seen)
    bundle = tmp_path / "node.pnbak"
    async with aiohttp.ClientSession() as http:
        # Before the backup: m1 delivered and acknowledged, m2 still queued at the backup.
        before = [await post_encounter(ops, http) for _ in range(5)]
        m1 = await send(node, peer.node_id)
        await _sign_and_anchor(ops)
        assert await _outbox_state(ops, m1) == OutboxState.DONE
        m2 = await send(node, peer.node_id)

        # The backup runs while encounters keep being posted.
        stop = asyncio.Event()
        during: list[str | None] = []

        async def load() -> None:
            while not stop.is_set():
                during.append(await post_encounter(ops, http))

        writer = asyncio.create_task(load())
        await asyncio.sleep(0.05)
        acked_before_backup = [e for e in before + list(during) if e]
        code, out = await cli("backup", "--config", str(ops.cfg), "--out", str(bundle))
        stop.set()
        await writer
        assert code == 0, out
        assert "backup " in out and bundle.stat().st_size > 0
        assert len(during) >= 2  # the node answered writes while the backup ran

        # After the backup: m2 goes out and is acknowledged, m3 too, more entries anchored.
        await net.settle()
        assert await _outbox_state(ops, m2) == OutboxState.DONE
        m3 = await send(node, peer.node_id)
        for _ in range(3):
            await post_encounter(ops, http)
        await _sign_and_anchor(ops)
        assert seen.seen == [m1, m2, m3]
    anchored = await scalar(node, "SELECT signed_seq FROM audit_head")

    await wipe(ops)
    code, out = await cli("restore", "--config", str(ops.cfg), "--from", str(bundle))
    assert code == 0, out
    assert "key file written" in out and "restore recorded as entry" in out

    await node.start()
    restored = {str(r) for r in (await _ids(ops))}
    lost = [e for e in acked_before_backup if e not in restored]
    assert not lost, f"acknowledged before the backup but not restored: {lost}"
    # The snapshot is one moment: every restored encounter has its audit entry.
    assert await scalar(node, "SELECT count(*) FROM encounters") == await scalar(
        node, "SELECT count(*) FROM audit_log WHERE action = 'encounter.create'")
    # m1 stays done (never sent again); m2 was pending in the backup: sent again, the peer
    # answers from its inbox (duplicate), its handler does not run twice.
    assert await _outbox_state(ops, m1) == OutboxState.DONE
    assert await _outbox_state(ops, m2) == OutboxState.PENDING
    await net.settle()
    assert await _outbox_state(ops, m2) == OutboxState.DONE
    m4 = await send(node, peer.node_id)
    await net.settle()
    assert await _outbox_state(ops, m4) == OutboxState.DONE
    assert seen.seen == [m1, m2, m3, m4]

    # The hub's anchor is ahead of the restored log: a documented restore point.
    head = await scalar(node, "SELECT seq FROM audit_head")
    code, out = await cli("audit", "verify", "--config", str(ops.cfg))
    assert code == 0, out
    assert "documented restore point" in out and f"anchor at entry {anchored}" in out, out
    record("ops-backup-drill-" + ops.kind, area="fault",
           case=f"backup under write load, wipe, restore, verify, resume ({ops.kind})",
           how="real hub and two nodes; encounters posted through the API while the real "
               "`peernet node backup` runs; node stopped, database and key files destroyed, "
               "`peernet node restore`, node restarted",
           result="every encounter acknowledged before the backup restored, each with its "
                  "audit entry; a message pending at the backup re-sent and deduplicated by "
                  "the peer (its handler ran once); audit verify passes with the hub's "
                  "later anchor named as a documented restore point",
           figures={"writes_during_backup": len(during), "restored_head": head,
                    "hub_anchor": anchored})


async def _ids(ops: OpsNet) -> list[Any]:
    from node.core.db import Encounter, table_of

    t = table_of(Encounter)
    async with ops.node.db.read() as conn:
        return list((await conn.execute(select(t.c.id))).scalars())
