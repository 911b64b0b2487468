"""`peernet node release --month` and `peernet node ledger` on a freshly initialised node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from peernet.cli import main


def test_release_and_ledger_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERNET_PASSPHRASE", "correct horse battery staple")
    cfg = tmp_path / "node.toml"
    runner = CliRunner()
    init = runner.invoke(main, [
        "node", "init", "--config", str(cfg), "--node-id", "metro-fire", "--name", "Metro Fire",
        "--data-dir", str(tmp_path / "data"), "--password-stdin",
    ], input="a long admin password 123\n")
    assert init.exit_code == 0, init.output
    first = runner.invoke(main, ["node", "release", "--month", "2026-01", "--config", str(cfg)])
    assert first.exit_code == 0, first.output
    assert "2026-01: recorded" in first.output
    again = runner.invoke(main, ["node", "release", "--month", "2026-01", "--config", str(cfg)])
    assert "already recorded" in again.output
    bad = runner.invoke(main, ["node", "release", "--month", "2999-01", "--config", str(cfg)])
    assert bad.exit_code != 0 and "month_not_finished" in bad.output
    listing = runner.invoke(main, ["node", "ledger", "--json", "--config", str(cfg)])
    rows = json.loads(listing.output)
    assert [r["month"] for r in rows] == ["2026-01"] and rows[0]["measure"] == "zcdp"
