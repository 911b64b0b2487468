"""`peernet node activation ...` against real nodes (the CLI is a client of the node API)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from node.activation_cli import parse_time
from node.vocabulary import Role
from peernet.cli import main
from tests.activations.netutil import add_user, state_of
from tests.federation.network import NodeHandle, make_network


async def cli(node: NodeHandle, token: str, *args: str) -> tuple[int, Any]:
    def run() -> Any:
        return CliRunner().invoke(
            main, ["node", "activation", "--url", node.url, "--token", token, *args]
        )

    result = await asyncio.to_thread(run)
    if result.exit_code == 0:
        return 0, json.loads(result.output)
    return result.exit_code, result.output.strip()


def test_parse_time() -> None:
    assert parse_time("2026-06-01T00:00Z") == 1_780_272_000_000
    assert parse_time("1780272000000") == 1_780_272_000_000
    assert parse_time("+2h", now_ms=1000) == 1000 + 7_200_000
    assert parse_time("-30m", now_ms=1_800_000) == 0


async def test_cli_drives_request_offer_accept_decline_update_cancel(tmp_path: Path) -> None:
    net = await make_network(4, tmp_path=tmp_path)
    try:
        a, b, c = net.node("agency-1"), net.node("agency-2"), net.node("agency-3")
        _, ta = await add_user(a, "coord", Role.COORDINATOR)
        _, tb = await add_user(b, "coord", Role.COORDINATOR)
        _, tc = await add_user(c, "coord", Role.COORDINATOR)
        _, sup = await add_user(a, "sup", Role.PEER_SUPPORTER)
        now = net.clock.now_ms()
        request = [
            "request", "--incident-ref", "INC-9", "--incident-type", "mass_casualty",
            "--event", str(now - 3_600_000), "--affected", "fire=20", "--affected", "ems=5",
            "--intervention", "defusing", "--window-start", str(now),
            "--window-end", str(now + 6 * 3_600_000), "--peers", "4",
            "--location", "STAGING-B", "--contact-role", "coordinator",
            "--contact-phone", "+1 555 0100", "--approver", "chief",
            "--expires", str(now + 4 * 3_600_000), "--target", "agency-2",
            "--target", "agency-3",
        ]
        code, out = await cli(a, sup, *request)
        assert code == 1 and out.startswith("Error: forbidden:")
        code, out = await cli(a, ta, *request)
        assert code == 0 and out["state"] == "requested", out
        aid = out["activation_id"]
        await net.settle()
        code, listed = await cli(b, tb, "list", "--side", "in")
        assert [x["activation_id"] for x in listed["items"]] == [aid]
        code, out = await cli(b, tb, "offer", aid, "--discipline", "law_enforcement=2",
                              "--eta", "30", "--condition", "meals_required")
        assert code == 0 and out["legs"][0]["state"] == "offered"
        code, out = await cli(c, tc, "decline", aid, "--reason", "no_capacity")
        assert code == 0 and out["state"] == "declined"
        await net.settle()
        code, shown = await cli(a, ta, "show", aid)
        legs = {leg["responder"]: leg for leg in shown["legs"]}
        assert legs["agency-3"]["state"] == "declined"
        offer_id = legs["agency-2"]["offer"]["msg_id"]
        code, first = await cli(a, ta, "accept", aid, offer_id)
        code2, again = await cli(a, ta, "accept", aid, offer_id)
        assert (code, code2) == (0, 0) and again["repeated"]
        assert again["accept_msg_id"] == first["accept_msg_id"]
        await net.settle()
        code, out = await cli(b, tb, "update", aid, "mobilized")
        assert code == 0 and out["state"] == "mobilized"
        code, out = await cli(b, tb, "update", aid, "demobilized")
        assert code == 1 and "illegal_transition" in out
        await net.settle()
        code, out = await cli(a, ta, "cancel", aid, "--reason", "resolved_locally")
        assert code == 0 and out["state"] == "cancelled"
        await net.settle()
        assert (await state_of(b, aid, "agency-1")).value == "cancelled"
        code, out = await cli(a, ta, "targets", "--discipline", "corrections")
        assert [t["node_id"] for t in out["items"]] == ["agency-4"]
    finally:
        await net.close()
