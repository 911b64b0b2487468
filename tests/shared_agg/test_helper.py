"""The helper aggregator through real servers (hub, helper, nodes; SQLite and PostgreSQL):
shares stored once per node-month, a resend changes nothing, a different or mismatched
share refused with a stable code and nothing stored, a round answered with the noisy sum of
exactly the listed shares or `missing`, a round from a non-hub refused; `peernet helper init`."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import aiohttp
from click.testing import CliRunner
from sqlalchemy import func, select

from federation.board import BOARD_FORMAT
from federation.store import outbox
from helper.store import HelperAnswer, HelperShare
from peernet.cli import main as peernet_main
from protocol import shares
from protocol.envelope import Opened
from protocol.messages import MessageType
from protocol.workload import SCHEMA, WORKLOAD_KEYS
from tests.shared_agg.conftest import SharedFactory
from tests.shared_agg.network import HELPER_ID, HELPER_TOKEN, SharedNetwork

K = len(WORKLOAD_KEYS)
MONTH = "2026-04"  # the network clock starts in May 2026


def share_body(values: list[int], **kw: Any) -> dict[str, Any]:
    return {"month": MONTH, "schema": SCHEMA, "share": shares.encode(values),
            "bounds": {"per_person_month": 4, "per_cell": 1}, "measure": "zcdp", **kw}


async def send(net: SharedNetwork, frm: Any, to: str, t: MessageType, body: Any) -> str:
    async with frm.db.write() as conn:
        msg_id: str = await frm.fed.send(conn, to, t, body)
    await net.settle()
    return msg_id


async def outbox_row(server: Any, msg_id: str) -> Any:
    async with server.db.read() as conn:
        return (await conn.execute(select(outbox.c.state, outbox.c.failed_code).where(
            outbox.c.msg_id == msg_id))).one()


async def helper_shares(net: SharedNetwork) -> list[tuple[str, str, bytes]]:
    async with net.helper.db.read() as conn:
        return [tuple(r) for r in await conn.execute(
            select(HelperShare.node_id, HelperShare.month, HelperShare.share)
            .order_by(HelperShare.node_id))]


async def test_shares_stored_once_and_refusals_change_nothing(shared_net: SharedFactory) -> None:
    net = await shared_net(2)
    a = net.nodes[0]
    rng = random.Random(1)
    x = [rng.randint(0, 9) for _ in range(K)]
    _, helper_share = shares.split(x, rng.randbytes)
    first = await send(net, a, HELPER_ID, MessageType.AGGREGATE_SHARE, share_body(helper_share))
    assert await outbox_row(a, first) == ("done", None)
    stored = await helper_shares(net)
    assert [(r[0], r[1]) for r in stored] == [(a.node_id, MONTH)]
    # the same body again (a resend under a new msg id): accepted, nothing new
    again = await send(net, a, HELPER_ID, MessageType.AGGREGATE_SHARE, share_body(helper_share))
    assert await outbox_row(a, again) == ("done", None)
    assert await helper_shares(net) == stored
    # a different share for the same node-month: conflicting_share, nothing changed
    other = shares.add(helper_share, [1] * K)
    bad = await send(net, a, HELPER_ID, MessageType.AGGREGATE_SHARE, share_body(other))
    assert await outbox_row(a, bad) == ("failed", "conflicting_share")
    # bounds not the policy's, or a month not over: share_mismatch
    b = net.nodes[1]
    mism = await send(net, b, HELPER_ID, MessageType.AGGREGATE_SHARE,
                      share_body(helper_share, bounds={"per_person_month": 9, "per_cell": 1}))
    assert await outbox_row(b, mism) == ("failed", "share_mismatch")
    future = await send(net, b, HELPER_ID, MessageType.AGGREGATE_SHARE,
                        share_body(helper_share, month="2026-05"))
    assert await outbox_row(b, future) == ("failed", "share_mismatch")
    assert await helper_shares(net) == stored


async def test_round_sums_exactly_the_listed_shares(shared_net: SharedFactory) -> None:
    net = await shared_net(3)
    got: list[dict[str, Any]] = []

    async def on_result(_conn: Any, opened: Opened) -> None:
        got.append(opened.body_json)

    net.hub.fed.register_handler(MessageType.AGGREGATE_RESULT, on_result, replace=True)
    rng = random.Random(2)
    xs, hub_parts = {}, {}
    north = [net.nodes[0], net.nodes[2]]  # agency-1 and agency-3; agency-2 is south
    for n in north:
        xs[n.node_id] = [rng.randint(0, 20) for _ in range(K)]
        hub_parts[n.node_id], helper_part = shares.split(xs[n.node_id], rng.randbytes)
        await send(net, n, HELPER_ID, MessageType.AGGREGATE_SHARE, share_body(helper_part))
    ids = sorted(xs)
    absent = net.nodes[1].node_id
    groups = {"north": ids, "south": [absent]}
    rnd = {"round_id": "01JDZZZZZZZZZZZZZZZZZZZZZZ", "month": MONTH, "schema": SCHEMA,
           "groups": groups}
    # a hub inventing groups: a node listed under another region is refused, nothing stored
    forged = {**rnd, "round_id": "01JDZZZZZZZZZZZZZZZZZZZZZW", "groups": {"south": ids}}
    msg = await send(net, net.hub, HELPER_ID, MessageType.AGGREGATE_ROUND, forged)
    assert await outbox_row(net.hub, msg) == ("failed", "round_conflict") and got == []
    await send(net, net.hub, HELPER_ID, MessageType.AGGREGATE_ROUND, rnd)
    [result] = got
    assert result["results"]["south"] == {"missing": [absent]}
    helper_sum = shares.decode(result["results"]["north"]["sum"], K)
    hub_sum = shares.zeros(K)
    for i in ids:
        hub_sum = shares.add(hub_sum, hub_parts[i])
    combined = shares.combine(hub_sum, helper_sum)
    truth = [sum(xs[i][k] for i in ids) for k in range(K)]
    noise = [c - t for c, t in zip(combined, truth, strict=True)]
    # the helper's noise only: sigma 17.9 .. 34.6 per key, so well under 8 sigma everywhere
    assert all(abs(e) < 8 * 35 for e in noise) and any(e != 0 for e in noise)
    # the same group-month with another set is refused; nothing new stored
    rnd2 = {**rnd, "round_id": "01JDZZZZZZZZZZZZZZZZZZZZZY", "groups": {"north": ids[:1]}}
    msg = await send(net, net.hub, HELPER_ID, MessageType.AGGREGATE_ROUND, rnd2)
    assert await outbox_row(net.hub, msg) == ("failed", "round_conflict")
    async with net.helper.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(HelperAnswer))
                ).scalar_one() == 1
    # a round from an agency is refused
    msg = await send(net, net.nodes[0], HELPER_ID, MessageType.AGGREGATE_ROUND,
                     {**rnd, "round_id": "01JDZZZZZZZZZZZZZZZZZZZZZX"})
    assert await outbox_row(net.nodes[0], msg) == ("failed", "unknown_sender")
    # the operator's status route: counts only, token required
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{net.helper.url}/api/v1/status") as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "unauthenticated"
        async with http.get(f"{net.helper.url}/api/v1/status",
                            headers={"Authorization": f"Bearer {HELPER_TOKEN}"}) as resp:
            doc = await resp.json()
        assert doc["shares"] == {MONTH: 2} and doc["groups_answered"] == {MONTH: 1}
        async with http.get(f"{net.helper.url}/healthz") as resp:
            assert (await resp.json())["ok"] is True


def test_helper_init_writes_keys_config_and_info(tmp_path: Path) -> None:
    board = tmp_path / "board.json"
    from tests.federation.boards import TestBoard

    b = TestBoard.make(3, 2)
    board.write_text(json.dumps({"format": BOARD_FORMAT, "keys": b.board().keys,
                                 "threshold": 2}), encoding="utf-8")
    cfg = tmp_path / "helper.toml"
    result = CliRunner().invoke(peernet_main, [
        "helper", "init", "--config", str(cfg), "--helper-id", "state-helper",
        "--name", "State helper", "--data-dir", str(tmp_path / "data"),
        "--public-url", "http://127.0.0.1:8091", "--hub-url", "http://127.0.0.1:8090",
        "--board", str(board)], env={"PEERNET_HELPER_PASSPHRASE": "a long passphrase 123"})
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "data" / "helper-info.json").read_text("utf-8"))
    assert info["node"]["roles"] == ["helper"] and info["node"]["node_id"] == "state-helper"
    assert (tmp_path / "data" / "helper.key").exists() and cfg.exists()
    assert "passphrase" not in cfg.read_text("utf-8")
