"""`peernet demo --interstate` inside the suite: two networks, the compact, the interstate
incident and the national view, through the real CLI; the JSON summary checked."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from peernet.cli import main
from tests.demo.test_demo import EMPLOYEE_NUMBER


@pytest.mark.slow
def test_interstate_demo_runs_end_to_end_and_its_summary_holds(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    t0 = time.monotonic()
    result = CliRunner().invoke(
        main, ["demo", "--interstate", "--dir", str(tmp_path / "net"), "--json", str(out)],
        catch_exceptions=False,
    )
    elapsed = time.monotonic() - t0
    assert result.exit_code == 0, result.output
    assert elapsed < 60
    s = json.loads(out.read_text())

    # Two networks, each with its own 2-of-3 board, hub and three agencies.
    nets = {n["network_id"]: n for n in s["networks"]}
    assert set(nets) == {"hi", "ca"}
    for nid, n in nets.items():
        assert n["hub_id"] == f"{nid}-hub"
        assert n["board"] == {"keys": 3, "threshold": 2}
        assert len(n["agencies"]) == 3 and all(a.startswith(nid + "/") for a in n["agencies"])
        other = "ca" if nid == "hi" else "hi"
        assert n["foreign_rosters"] == {other: 1}  # the other's roster, verified

    # One compact, signed by both boards, installed at both hubs.
    assert s["compact"]["version"] == 1
    assert sorted(s["compact"]["networks"]) == ["ca", "hi"]
    assert sorted(s["compact"]["installed_at"]) == ["ca-hub", "hi-hub"]

    # Each hub's operator page lists both members and the other's roster it holds.
    for hub_id, status in s["hub_interstate_status"].items():
        assert status is not None, hub_id
        assert status["compact_version"] == 1
        held = {m["network_id"]: m["roster_version"] for m in status["members"]}
        assert held == ({"hi": None, "ca": 1} if hub_id == "hi-hub" else {"hi": 1, "ca": None})

    # The Hawaii coordinator sees California's agencies (names, disciplines, regions).
    seen = s["directory_seen_by"]["hi"]
    assert seen["network_id"] == "ca"
    assert {a["node_id"] for a in seen["agencies"]} == {"la-fire", "sac-ems", "sd-911"}

    # ... and so does the coordinator's own node, from the roster it verified itself.
    assert {a["node_id"] for a in s["incident"]["directory_at_requester"]} == {
        "ca/la-fire", "ca/sac-ems", "ca/sd-911"}

    # California's fire department requires approval of interstate requests: its offer is
    # refused until its admin approves.
    assert s["incident"]["approval"] == {"agency": "ca/la-fire", "policy": "require_in",
                                         "before": "approval_required", "approved": True,
                                         "state_after": "requested"}

    # The interstate incident: request, offers, acceptance, a hand-off across the line,
    # close; both hubs logged the thread.
    inc = s["incident"]
    assert s["missing"] == [], s["missing"]
    assert inc["requester"] == "hi/maui-pd"
    assert inc["targets"] == ["ca/la-fire", "ca/sac-ems", "ca/sd-911"]
    assert inc["steps"] == ["requested", "offered", "accepted", "mobilized", "on_scene",
                            "demobilized", "handoff", "closed"]
    assert inc["offers"] == 3 and inc["handoffs"] == 1 and inc["completed"] is True
    assert inc["hub_log_entries"]["hi-hub"] > 0 and inc["hub_log_entries"]["ca-hub"] > 0

    # Both states released; each hub's national view has both states in every month.
    assert s["releases"] == {"hi": 3 * len(s["months"]), "ca": 3 * len(s["months"])}
    for nid, nat in s["national"].items():
        assert nat["own_network"] == nid
        assert nat["networks"] == ["ca", "hi"]
        assert [f["status"] for f in nat["fetched"]] == ["stored"]
        assert all(r == ["ca", "hi"] for r in nat["states_reporting"])
        assert nat["all_months_both_states"] is True

    assert s["undelivered"] == 0
    assert "national view" in result.output
    assert not EMPLOYEE_NUMBER.search(result.output)
    assert not EMPLOYEE_NUMBER.search(out.read_text())


def test_interstate_demo_refuses_serve() -> None:
    result = CliRunner().invoke(main, ["demo", "--interstate", "--serve"])
    assert result.exit_code == 1
    assert "[bad_option]" in result.output
