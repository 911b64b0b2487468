"""`peernet node activation ...` against real nodes (the CLI is a client of the node API)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from node.activation.cli import parse_time
from node.activation.output import local_time, render
from node.core.vocabulary import Role
from peernet.cli import main
from tests.activations.netutil import add_user, state_of
from tests.federation.network import NodeHandle, make_network


async def cli_text(node: NodeHandle, token: str, *args: str) -> tuple[int, str]:
    def run() -> Any:
        return CliRunner().invoke(
            main, ["node", "activation", "--url", node.url, "--token", token, *args]
        )

    result = await asyncio.to_thread(run)
    return result.exit_code, result.output.strip()


async def cli(node: NodeHandle, token: str, *args: str) -> tuple[int, Any]:
    """The machine form: `--json` before the subcommand (or after it, the same)."""
    code, out = await cli_text(node, token, "--json", *args)
    return (0, json.loads(out)) if code == 0 else (code, out)


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
        assert code == 1 and out.startswith("Error: ") and out.endswith("[forbidden]")
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


def test_local_time_names_the_zone() -> None:
    from zoneinfo import ZoneInfo

    assert local_time(1_780_272_000_000, ZoneInfo("America/Chicago")) == "2026-05-31 19:00 CDT"
    assert local_time(1_780_272_000_000, ZoneInfo("UTC")) == "2026-06-01 00:00 UTC"
    text = render({"items": [{"node_id": "a", "expires_ts": 0, "allowed": True}]},
                  ZoneInfo("UTC"))
    assert text.splitlines() == ["NODE ID  EXPIRES               ALLOWED",
                                 "a        1970-01-01 00:00 UTC  yes"]
    assert render({"items": []}) == "(none)"


def test_a_paged_list_with_its_total_is_still_a_table() -> None:
    from zoneinfo import ZoneInfo

    row = {"node_id": "a", "expires_ts": 0, "allowed": True}
    page = render({"items": [row], "next_cursor": "c2", "total": 3}, ZoneInfo("UTC"))
    assert page.splitlines()[0].startswith("NODE ID")
    assert page.splitlines()[-1] == "(3 in all; more: cursor c2)"
    last = render({"items": [row], "next_cursor": None, "total": 1}, ZoneInfo("UTC"))
    assert last.splitlines() == ["NODE ID  EXPIRES               ALLOWED",
                                 "a        1970-01-01 00:00 UTC  yes"]


async def test_cli_prints_text_by_default_and_json_on_request(tmp_path: Path) -> None:
    net = await make_network(2, tmp_path=tmp_path)
    try:
        a = net.node("agency-1")
        _, ta = await add_user(a, "coord", Role.COORDINATOR)
        now = net.clock.now_ms()
        code, out = await cli_text(
            a, ta, "request", "--incident-ref", "INC-7", "--incident-type", "mass_casualty",
            "--event", str(now - 3_600_000), "--affected", "fire=3", "--intervention",
            "defusing", "--window-start", str(now), "--window-end", str(now + 3_600_000),
            "--peers", "2", "--location", "STA-7", "--contact-role", "coordinator",
            "--contact-phone", "+1 555 0100", "--approver", "chief",
            "--expires", str(now + 7_200_000), "--target", "agency-2")
        assert code == 0, out
        assert "state:" in out and "requested" in out and "legs:" in out
        assert local_time(now - 3_600_000) in out  # the event, in local time with its zone
        assert str(now) not in out and "{" not in out  # no epoch ms, no JSON
        aid = out.split("activation id:", 1)[1].split()[0]
        # --json prints the API's answer unchanged, before or after the subcommand.
        code1, before = await cli_text(a, ta, "--json", "show", aid)
        code2, after = await cli_text(a, ta, "show", aid, "--json")
        assert (code1, code2) == (0, 0) and before == after
        doc = json.loads(before)
        assert before == json.dumps(doc, indent=2, sort_keys=True)
        assert doc["request"]["event_ts"] == now - 3_600_000
        code, listed = await cli_text(a, ta, "list", "--side", "out")
        assert code == 0 and listed.splitlines()[0].startswith("ACTIVATION ID")
        assert aid in listed and "INC-7" in listed
        # A refusal is one line, whatever the output form.
        code, out = await cli_text(a, ta, "show", "01NOTANACTIVATION0000000000")
        assert code == 1 and out.startswith("Error: ") and len(out.splitlines()) == 1
    finally:
        await net.close()
