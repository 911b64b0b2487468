"""`peernet hub init` / `install-roster` with a board made by `peernet board`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from federation.board_cli import board_group
from hub.cli import hub_group

ENV = {
    "PEERNET_BOARD_PASSPHRASE": "board passphrase here",
    "PEERNET_HUB_PASSPHRASE": "hub passphrase here",
}


def _ok(group: object, args: list[str]) -> str:
    res = CliRunner().invoke(group, args, env=ENV, catch_exceptions=False)  # type: ignore[arg-type]
    assert res.exit_code == 0, res.output
    return res.output


def test_hub_init_board_listing_and_roster_install(tmp_path: Path) -> None:
    board = tmp_path / "board"
    _ok(board_group, ["init", "--dir", str(board), "--keys", "2", "--threshold", "2"])
    cfg = tmp_path / "hub.toml"
    _ok(
        hub_group,
        [
            "init",
            "--config",
            str(cfg),
            "--hub-id",
            "hub-state",
            "--name",
            "State hub",
            "--data-dir",
            str(tmp_path / "hubdata"),
            "--public-url",
            "http://127.0.0.1:8090",
            "--board",
            str(board / "board.json"),
        ],
    )
    _ok(
        board_group,
        ["add-node", "--dir", str(board), "--info", str(tmp_path / "hubdata" / "hub-info.json")],
    )
    sigs = []
    for i in (1, 2):
        out = tmp_path / f"s{i}.json"
        _ok(
            board_group,
            [
                "sign",
                "--dir",
                str(board),
                "--key",
                str(board / "keys" / f"board-key-{i}.json"),
                "--out",
                str(out),
            ],
        )
        sigs.append(str(out))
    _ok(board_group, ["combine", "--dir", str(board), *sigs])
    roster = board / "rosters" / "roster-000001.json"
    assert "[1]" in _ok(hub_group, ["install-roster", "--config", str(cfg), str(roster)])
    assert "none new" in _ok(hub_group, ["install-roster", "--config", str(cfg), str(roster)])
    # A roster not signed by the pinned board is refused with its code.
    other = tmp_path / "other"
    _ok(board_group, ["init", "--dir", str(other), "--keys", "1", "--threshold", "1"])
    _ok(
        board_group,
        [
            "sign",
            "--dir",
            str(other),
            "--key",
            str(other / "keys" / "board-key-1.json"),
            "--out",
            str(tmp_path / "o.json"),
        ],
    )
    _ok(board_group, ["combine", "--dir", str(other), str(tmp_path / "o.json")])
    res = CliRunner().invoke(
        hub_group,
        ["install-roster", "--config", str(cfg), str(other / "rosters" / "roster-000001.json")],
        env=ENV,
    )
    # (Not a split view: it was never validly signed by the pinned board; issue 13 item 8.)
    assert res.exit_code == 1 and "roster_threshold" in res.output
    assert "split_view" not in res.output
