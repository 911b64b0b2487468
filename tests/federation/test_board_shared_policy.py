"""`peernet board policy set` turns shared aggregation on in one call with both fields
(`privacy.aggregation shared privacy.helper ID`), refuses a helper that is not a roster node
with role helper (and either field alone) with `bad_input`, leaving the draft unchanged, and
goes back to local with `privacy.helper null`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from federation.board import BoardDir
from federation.board_cli import board_group
from federation.keystore import NodeKeys
from federation.node_info import node_info_document

ENV = {"PEERNET_BOARD_PASSPHRASE": "correct horse battery staple"}


def _run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(board_group, args, env=ENV, catch_exceptions=False)
    return res.exit_code, res.output


def _add(tmp: Path, board: Path, node_id: str, roles: list[str] | None) -> None:
    keys = NodeKeys.generate()
    doc = node_info_document(
        node_id=node_id, name=node_id, disciplines=[] if roles else ["fire"], region="north",
        endpoint="https://peer.example.org", key_id=keys.key_id,
        verify_key=keys.verify_key_bytes, enc_public_key=keys.enc_public_bytes,
        **({"roles": roles} if roles else {}))
    info = tmp / f"{node_id}.json"
    info.write_text(json.dumps(doc))
    code, out = _run(["add-node", "--dir", str(board), "--info", str(info)])
    assert code == 0, out


def test_shared_aggregation_is_set_with_its_helper_in_one_call(tmp_path: Path) -> None:
    d = tmp_path / "board"
    assert _run(["init", "--dir", str(d), "--keys", "1", "--threshold", "1"])[0] == 0
    _add(tmp_path, d, "agency-1", None)
    _add(tmp_path, d, "helper-1", ["helper"])
    draft = d / "draft.json"

    def refused(args: list[str], field_hint: str) -> None:
        before = draft.read_bytes()
        code, out = _run(["policy", "set", "--dir", str(d), *args])
        assert code == 1 and "bad_input" in out and field_hint in out, out
        assert draft.read_bytes() == before  # nothing stored changed

    refused(["privacy.aggregation", "shared"], "helper")  # alone: the policy needs both
    refused(["privacy.aggregation", "shared", "privacy.helper", "agency-1"], "role helper")
    refused(["privacy.aggregation", "shared", "privacy.helper", "nobody-1"], "role helper")
    code, out = _run(["policy", "set", "--dir", str(d), "privacy.aggregation"])
    assert code == 2 and "PATH VALUE pairs" in out

    code, out = _run(["policy", "set", "--dir", str(d), "privacy.aggregation", "shared",
                      "privacy.helper", "helper-1"])
    assert code == 0, out
    privacy = BoardDir(d).draft(0).policy.privacy
    assert (privacy.aggregation, privacy.helper) == ("shared", "helper-1")

    code, out = _run(["policy", "set", "--dir", str(d), "privacy.aggregation", "local",
                      "privacy.helper", "null"])
    assert code == 0, out
    privacy = BoardDir(d).draft(0).policy.privacy
    assert (privacy.aggregation, privacy.helper) == ("local", None)
