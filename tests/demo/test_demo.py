"""`peernet demo` inside the suite: a smaller history, the whole script, the JSON summary."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from click.testing import CliRunner

from peernet.cli import main
from peernet.demo import ALL_STATES

# Synthetic employee numbers look like `RPD-0417`; incident numbers continue (`RPD-2024-...`).
EMPLOYEE_NUMBER = re.compile(r"\b[A-Z]{2,3}-[0-9]{4}\b(?!-)")


def test_demo_runs_end_to_end_and_its_summary_holds(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    t0 = time.monotonic()
    result = CliRunner().invoke(
        main,
        ["demo", "--dir", str(tmp_path / "net"), "--months", "2", "--per-month", "8",
         "--json", str(out)],
        catch_exceptions=False,
    )
    elapsed = time.monotonic() - t0
    assert result.exit_code == 0, result.output
    assert elapsed < 60
    s = json.loads(out.read_text())

    # Five agencies, one per discipline, in two regions, and a board-signed roster.
    assert len(s["nodes"]) == 5
    assert {n["discipline"] for n in s["nodes"]} == {
        "fire", "ems", "dispatch_911", "law_enforcement", "corrections"}
    assert {n["region"] for n in s["nodes"]} == {"north", "south"}
    assert s["board"]["threshold"] == 2 and s["board"]["keys"] == 3
    assert s["board"]["roster_version"] == 1
    assert all(n["encounters_seeded"] > 0 for n in s["nodes"])

    # Every activation state was reached, and the hub logged the steps.
    assert set(s["activations"]["states_reached"]) >= set(ALL_STATES)
    assert s["activations"]["all_states_reached"] is True
    assert s["activations"]["hub_log_entries"] >= 20
    assert s["activations"]["handoffs"] == 6

    # Each node released both months, each within its allowance and the yearly budget.
    assert s["releases"] == 5 * 2
    for node_id, ledger in s["ledger"].items():
        assert ledger["within_budget"] is True, node_id
        assert [r["month"] for r in ledger["releases"]] == s["months"]
        for r in ledger["releases"]:
            assert float(r["budget_spent"]) <= float(ledger["allowance_per_month"]) * (1 + 1e-9)
        for spent in ledger["spent_by_year"].values():
            assert float(spent) <= float(ledger["budget_per_year"])

    # The board's statistics: every month, every node reporting, intervals around estimates.
    stats = s["board_statistics"]
    assert [m["month"] for m in stats["months"]] == s["months"]
    for m in stats["months"]:
        assert m["nodes_reporting"] == 5
        figs = [m["encounters"], *m["by_discipline"].values()]
        for fig in figs:
            lo, hi = fig["interval"]
            assert lo < fig["estimate"] < hi
    assert stats["total"]["node_months"] == 10

    # Everything was delivered and acknowledged end to end.
    assert s["undelivered"] == 0

    # The output shows progress and the board's view, and never an employee number.
    assert "State board view" in result.output
    assert "Central activation log" in result.output
    assert result.output.count("\n[") >= 15  # a progress line per step
    assert not EMPLOYEE_NUMBER.search(result.output)
    assert not EMPLOYEE_NUMBER.search(out.read_text())


def test_demo_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {tmp_path} is not empty; give a new or empty directory [dir_not_empty]"]


def test_demo_needs_one_node_per_discipline() -> None:
    result = CliRunner().invoke(main, ["demo", "--nodes", "4"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_extra_nodes_repeat_the_disciplines_in_both_regions() -> None:
    from peernet.demo_network import agency_specs

    specs = agency_specs(8)
    assert len({s.node_id for s in specs}) == 8
    assert [s.discipline for s in specs[5:]] == ["fire", "ems", "dispatch_911"]
    assert {s.region for s in specs[5:]} == {"north", "south"}


async def _login(base: str, username: str, password: str) -> int:
    import aiohttp

    # unsafe=True: keep cookies from an IP address (the demo serves on 127.0.0.1)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{base}/login") as r:
            page = await r.text()
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        assert m, page[:200]
        async with http.post(f"{base}/login", allow_redirects=False, data={
                "csrf": m.group(1), "username": username, "password": password}) as r:
            return r.status


async def test_serve_mode_logins_work_for_every_role(tmp_path: Path) -> None:
    """What `--serve` prints: every node role and both hub roles can log in."""
    from peernet.demo import DemoOptions, _hub_users, run_demo
    from peernet.demo_seed import DEMO_PASSWORD

    seen: dict[str, int] = {}

    async def check(net: object, summary: dict[str, object]) -> None:
        from peernet.demo_network import DemoNetwork

        assert isinstance(net, DemoNetwork)
        hub_users = await _hub_users(net)
        assert hub_users == {"operator": "operator", "board_analyst": "analyst"}
        for user in hub_users.values():
            seen[f"hub/{user}"] = await _login(net.hub.url, user, DEMO_PASSWORD)
        node = net.nodes[0]
        for user in ("peer1", "coordinator", "admin", "auditor"):
            seen[f"node/{user}"] = await _login(node.url, user, DEMO_PASSWORD)
        seen["node/wrong"] = await _login(node.url, "peer1", "not the password")

    await run_demo(DemoOptions(tmp_path / "net", months=1, per_month=3), lambda _m: None,
                   keep_running=check)
    wrong = seen.pop("node/wrong")
    assert wrong not in (302, 303)
    assert all(status in (302, 303) for status in seen.values()), seen


def test_public_info_without_public_url_fails_in_the_cli_style(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text(f'node_id = "agency-1"\nname = "Agency"\ndata_dir = "{tmp_path}"\n')
    result = CliRunner().invoke(main, ["node", "public-info", "--config", str(cfg)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: set public_url in the config (or PEERNET_PUBLIC_URL): the roster lists it "
        "[config]"]
    assert not (tmp_path / "node-info.json").exists()
