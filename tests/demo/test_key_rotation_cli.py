"""Key rotation with the commands an operator runs: `peernet node rotate-key` and
`peernet hub rotate-key`, then `board add-node --replace`, signed and combined: the new
roster lists the new keys and keeps the old ones as old keys for the grace period."""

from __future__ import annotations

import json
import time
from pathlib import Path

from federation.board import ROTATION_GRACE_MS
from federation.keystore import NodeKeys
from federation.roster import parse_signed_roster
from protocol.encoding import b64u
from tests.demo.test_cli_errors import (
    HUB_PHRASE,
    NODE_PHRASE,
    _make_board,
    _ok,
    _sign_and_combine,
)


def _info_keys(path: Path) -> dict[str, str]:
    doc = json.loads(path.read_text())
    return {kid: v["key"] for kid, v in doc["node"]["sign_keys"].items()}


def test_rotate_node_and_hub_keys_then_publish(tmp_path: Path) -> None:
    board = tmp_path / "board"
    _make_board(board, 2, 2)
    keys = json.loads((board / "board.json").read_text())["keys"]
    hub_cfg, node_cfg = tmp_path / "hub.toml", tmp_path / "node.toml"
    _ok(["hub", "init", "--config", str(hub_cfg), "--hub-id", "state-hub", "--name", "Hub",
         "--data-dir", str(tmp_path / "hub"), "--public-url", "http://127.0.0.1:9",
         "--board", str(board / "board.json")], {"PEERNET_HUB_PASSPHRASE": HUB_PHRASE})
    node_env = {"PEERNET_PASSPHRASE": NODE_PHRASE, "PEERNET_PUBLIC_URL": "http://127.0.0.1:9",
                "PEERNET_BOARD_KEYS": json.dumps(keys), "PEERNET_BOARD_THRESHOLD": "2"}
    _ok(["node", "init", "--config", str(node_cfg), "--node-id", "metro-fire", "--name",
         "Fire", "--data-dir", str(tmp_path / "node"), "--discipline", "fire", "--region",
         "north", "--password-stdin"], node_env, stdin="admin password 1\n")
    node_info = tmp_path / "node" / "node-info.json"
    hub_info = tmp_path / "hub" / "hub-info.json"
    _ok(["node", "public-info", "--config", str(node_cfg)], node_env)
    first_node = _info_keys(node_info)
    first_hub = _info_keys(hub_info)
    assert list(first_node) == list(first_hub) == ["ed25519:1"]
    for info in (hub_info, node_info):
        _ok(["board", "add-node", "--dir", str(board), "--info", str(info)])
    _sign_and_combine(board, 2)

    out = _ok(["node", "rotate-key", "--config", str(node_cfg)], node_env)
    assert "ed25519:2" in out
    _ok(["hub", "rotate-key", "--config", str(hub_cfg)], {"PEERNET_HUB_PASSPHRASE": HUB_PHRASE})
    rotated = NodeKeys.load(tmp_path / "node" / "node.key", NODE_PHRASE)
    assert rotated.key_version == 2 and set(rotated.old_signing_keys) == {1}
    assert _info_keys(node_info) == {"ed25519:2": b64u(rotated.verify_key_bytes)}
    assert list(_info_keys(hub_info)) == ["ed25519:2"]
    assert NODE_PHRASE not in out and HUB_PHRASE not in out

    t0 = int(time.time() * 1000)
    for info in (hub_info, node_info):
        _ok(["board", "add-node", "--dir", str(board), "--info", str(info), "--replace"])
    v2_path = _sign_and_combine(board, 2)
    t1 = int(time.time() * 1000)
    _ok(["roster", "verify", str(v2_path), "--prev", str(board / "rosters" / "roster-000001.json")])
    v2 = parse_signed_roster(v2_path.read_bytes()).roster
    assert v2.version == 2
    for node_id, first, info in (("metro-fire", first_node, node_info),
                                 ("state-hub", first_hub, hub_info)):
        entry = v2.node(node_id)
        assert entry is not None
        assert {k: v.key for k, v in entry.sign_keys.items()} == _info_keys(info)
        [(kid, old)] = entry.old_sign_keys.items()
        assert (kid, old.key) == ("ed25519:1", first["ed25519:1"])
        assert old.valid_until is not None
        assert t0 + ROTATION_GRACE_MS <= old.valid_until <= t1 + ROTATION_GRACE_MS

