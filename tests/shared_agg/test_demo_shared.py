"""`peernet demo --aggregation shared`: the whole demo with a helper aggregator (real
servers, the real CLI): every node-month goes as shares, one round per month, the board's
statistics come from the published regions, nothing is left undelivered, and the output
says what the two modes protect."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from peernet.cli import main


def test_demo_with_a_helper(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    result = CliRunner().invoke(main, [
        "demo", "--dir", str(tmp_path / "net"), "--months", "2", "--per-month", "8",
        "--aggregation", "shared", "--json", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "helper aggregator state-helper serving" in result.output
    assert "if the hub and the helper collude" in result.output
    s = json.loads(out.read_text())
    assert s["aggregation"] == "shared" and s["undelivered"] == 0
    assert s["releases"] == 5 * 2
    months = s["board_statistics"]["months"]
    assert len(months) == 2 and all(m["encounters"] is not None for m in months)
    assert (tmp_path / "net" / "state-helper" / "helper.toml").exists()
    assert (tmp_path / "net" / "state-helper" / "helper.key").exists()
