"""Issue 18 item 4, leaving: `peernet node detach` writes a signed leave request that the
board's `peernet board accept-leave` turns into the next roster draft (node removed, keys
revoked); the node then runs alone: pages and API work, nothing is sent, federation
requests are refused, releases stop, every record stays. Detach twice and a tampered
request are refused, changing nothing. Real hub, nodes and CLI; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bench.reliability_report import record
from federation.board import BOARD_FORMAT, BoardDir
from federation.board_cli import board_group
from federation.errors import FederationError
from federation.store import outbox
from node.privacy.runtime import run_once as release_pass
from protocol.encoding import b64u
from tests.federation.helpers import TEST_TYPE, Recorder, send
from tests.ops.helpers import OpsNet, cli, make_ops_net, post_encounter, scalar


@pytest.fixture
async def ops(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> Any:
    o = await make_ops_net(tmp_path, db_url, request)
    try:
        yield o
    finally:
        await o.net.close()


def _board_dir(ops: OpsNet, root: Path) -> BoardDir:
    board = BoardDir(root)
    b = ops.net.board.board()
    root.mkdir()
    board.board_file.write_text(json.dumps({"format": BOARD_FORMAT, "keys": b.keys,
                                            "threshold": b.threshold}))
    board.rosters_dir.mkdir()
    board.roster_file(ops.net.roster.version).write_bytes(ops.net.roster.to_bytes())
    return board


def _board(*args: str) -> Any:
    return CliRunner().invoke(board_group, list(args))


async def test_detach_leaves_and_keeps_working_alone(ops: OpsNet, tmp_path: Path) -> None:
    node, peer = ops.node, ops.peer
    seen = Recorder()
    peer.on(TEST_TYPE, seen)
    async with aiohttp.ClientSession() as http:
        assert await post_encounter(ops, http)
    queued = await send(node, peer.node_id)  # still queued when the node leaves
    records = await scalar(node, "SELECT count(*) FROM encounters")

    code, out = await cli("detach", "--config", str(ops.cfg))
    assert code == 0, out
    assert node.settings is not None
    request = node.settings.data_dir / "leave-request.json"
    doc = json.loads(request.read_text())
    assert doc["request"]["node_id"] == node.node_id and doc["sig"]["key_id"] == "ed25519:1"
    async with node.db.read() as conn:
        row = (await conn.execute(select(outbox.c.state, outbox.c.failed_code).where(
            outbox.c.msg_id == queued))).one()
    assert tuple(row) == ("failed", "detached")

    # Twice: refused, nothing changes.
    entries = await scalar(node, "SELECT count(*) FROM audit_log")
    code, out = await cli("detach", "--config", str(ops.cfg),
                          "--out", str(tmp_path / "again.json"))
    assert code == 1 and "[already_detached]" in out, out
    assert await scalar(node, "SELECT count(*) FROM audit_log") == entries
    assert not (tmp_path / "again.json").exists()

    # The board: a tampered request is refused (no draft written); the real one removes
    # the node and revokes its key in the draft of the next version.
    board = _board_dir(ops, tmp_path / "board")
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps({**doc, "request": {**doc["request"], "reason": "other"}}))
    r = await asyncio.to_thread(_board, "accept-leave", "--dir", str(board.root),
                                "--request", str(tampered))
    assert r.exit_code == 1 and "signature does not verify" in r.output, r.output
    assert not board.draft_file.exists()
    r = await asyncio.to_thread(_board, "accept-leave", "--dir", str(board.root),
                                "--request", str(request))
    assert r.exit_code == 0, r.output
    draft = board.draft(ops.net.clock.now_ms())
    assert draft.version == 2 and draft.node(node.node_id) is None
    key = b64u(node.keys.verify_key_bytes)
    assert [(x.key, x.reason) for x in draft.revoked] == [(key, "left the network")]

    # The node restarts alone: its records and API work, the federation is off.
    await node.stop()
    await node.start()
    assert node.fed.state.current is None and not node.fed.run_worker
    assert await scalar(node, "SELECT count(*) FROM encounters") == records
    async with aiohttp.ClientSession() as http:
        assert await post_encounter(ops, http)
        async with http.get(node.url + "/api/v1/encounters",
                            headers={"Authorization": f"Bearer {ops.token}"}) as resp:
            assert resp.status == 200
        async with http.put(node.url + "/fed/v1/send/x1", data=b"{}") as resp:
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "detached"
    with pytest.raises(FederationError):
        await send(node, peer.node_id)
    assert node.app is not None
    assert await release_pass(node.db, node.fed, node_id=node.node_id, keys=node.keys,
                              now_ms=ops.net.clock.now_ms() + 40 * 86_400_000) == []
    await ops.net.settle()
    assert seen.seen == []  # the queued message never left
    record("ops-detach-" + ops.kind, area="bad-input",
           case=f"detach: leave request, board accept-leave, node alone ({ops.kind})",
           how="real CLI detach, board accept-leave on a board directory, node restarted",
           result="signed request accepted by the board (node removed, key revoked "
                  "'left the network'); a tampered one refused with no draft; detach twice "
                  "refused already_detached with nothing changed; the node's API works, "
                  "federation requests answer 403 detached, no release, nothing sent")
