"""`peernet board` / `peernet roster` end to end: init, add-node, policy, sign, combine,
verify, revoke; refusals print a stable code and write nothing."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from federation.board import BoardDir, read_pin
from federation.board_cli import board_group, roster_group
from federation.clock import SystemClock
from federation.keystore import NodeKeys
from federation.node_info import node_info_document
from federation.roster import parse_signed_roster
from federation.roster_state import RosterState
from protocol.encoding import b64u

ENV = {"PEERNET_BOARD_PASSPHRASE": "correct horse battery staple"}


def _run(group: object, args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(group, args, env=ENV, catch_exceptions=False)  # type: ignore[arg-type]
    return res.exit_code, res.output


def _info(tmp: Path, node_id: str, keys: NodeKeys) -> Path:
    doc = node_info_document(
        node_id=node_id,
        name=f"{node_id} peer team",
        disciplines=["fire"],
        region="north",
        endpoint="https://peer.example.org",
        key_id=keys.key_id,
        verify_key=keys.verify_key_bytes,
        enc_public_key=keys.enc_public_bytes,
    )
    path = tmp / f"{node_id}.json"
    path.write_text(json.dumps(doc))
    return path


def test_board_workflow(tmp_path: Path) -> None:
    d = tmp_path / "board"
    code, out = _run(board_group, ["init", "--dir", str(d), "--keys", "3", "--threshold", "2"])
    assert code == 0, out
    key_files = sorted((d / "keys").glob("*.json"))
    assert len(key_files) == 3
    assert b"signing_key" not in key_files[0].read_bytes()  # sealed at rest
    alpha = NodeKeys.generate()
    assert (
        _run(
            board_group,
            ["add-node", "--dir", str(d), "--info", str(_info(tmp_path, "alpha-fd", alpha))],
        )[0]
        == 0
    )
    code, out = _run(
        board_group,
        ["add-node", "--dir", str(d), "--info", str(_info(tmp_path, "alpha-fd", alpha))],
    )
    assert code == 1 and "conflict" in out
    assert _run(board_group, ["policy", "set", "--dir", str(d), "privacy.per_cell", "2"])[0] == 0
    code, out = _run(board_group, ["policy", "set", "--dir", str(d), "privacy.per_cell", '"x"'])
    assert code == 1 and "bad_input" in out
    sigs = []
    for i, kf in enumerate(key_files[:2]):
        out_file = tmp_path / f"sig{i}.json"
        assert (
            _run(board_group, ["sign", "--dir", str(d), "--key", str(kf), "--out", str(out_file)])[
                0
            ]
            == 0
        )
        sigs.append(str(out_file))
    # One signature is below the threshold: refused, nothing written.
    code, out = _run(board_group, ["combine", "--dir", str(d), sigs[0]])
    assert code == 1 and "roster_threshold" in out
    assert not (d / "rosters").exists() or not list((d / "rosters").iterdir())
    code, out = _run(board_group, ["combine", "--dir", str(d), *sigs])
    assert code == 0, out
    v1_path = d / "rosters" / "roster-000001.json"
    v1 = parse_signed_roster(v1_path.read_bytes())
    assert v1.roster.policy.privacy.per_cell == 2 and v1.roster.node("alpha-fd") is not None
    code, out = _run(roster_group, ["verify", str(v1_path), "--pin", str(d / "board.json")])
    assert code == 0 and "version 1" in out
    # Version 2 revokes alpha's key.
    assert (
        _run(
            board_group,
            [
                "revoke",
                "--dir",
                str(d),
                "--key",
                b64u(alpha.verify_key_bytes),
                "--reason",
                "lost device",
            ],
        )[0]
        == 0
    )
    sigs2 = []
    for i, kf in enumerate(key_files[1:]):
        out_file = tmp_path / f"v2sig{i}.json"
        assert (
            _run(board_group, ["sign", "--dir", str(d), "--key", str(kf), "--out", str(out_file)])[
                0
            ]
            == 0
        )
        sigs2.append(str(out_file))
    assert _run(board_group, ["combine", "--dir", str(d), *sigs2])[0] == 0
    v2_path = d / "rosters" / "roster-000002.json"
    code, out = _run(roster_group, ["verify", str(v2_path), "--prev", str(v1_path)])
    assert code == 0, out
    state = RosterState(SystemClock(), read_pin(d / "board.json"))
    state.offer([v1, parse_signed_roster(v2_path.read_bytes())])
    assert state.version == 2
    # A signature for an older draft is refused.
    code, out = _run(board_group, ["combine", "--dir", str(d), sigs[0]])
    assert code == 1
    assert BoardDir(d).latest() is not None


def test_wrong_passphrase_refused(tmp_path: Path) -> None:
    d = tmp_path / "b"
    assert _run(board_group, ["init", "--dir", str(d), "--keys", "1", "--threshold", "1"])[0] == 0
    res = CliRunner().invoke(
        board_group,
        [
            "sign",
            "--dir",
            str(d),
            "--key",
            str(d / "keys" / "board-key-1.json"),
            "--out",
            str(tmp_path / "s.json"),
        ],
        env={"PEERNET_BOARD_PASSPHRASE": "wrong"},
    )
    assert res.exit_code == 1 and "wrong passphrase" in res.output
    assert not (tmp_path / "s.json").exists()
