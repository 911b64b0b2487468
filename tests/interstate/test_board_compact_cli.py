"""`peernet board compact ...` through the real CLI: two boards (made by `peernet board init`,
keys sealed under passphrases) sign a compact; too few of one board, a draft changed after
signing and a wrong passphrase are refused and write nothing; a removal is a new version."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from federation.clock import SystemClock
from federation.compact_acceptance import parse_compact_document
from federation.keystore import NodeKeys
from federation.node_info import node_info_document
from peernet.cli import main

ENV = {"PEERNET_BOARD_PASSPHRASE": "correct horse battery"}


def run(*args: str, ok: bool = True, env: dict[str, str] | None = None) -> Result:
    res = CliRunner().invoke(main, list(args), env=env or ENV, catch_exceptions=False)
    assert (res.exit_code == 0) == ok, res.output
    return res


def _network(tmp: Path, nid: str) -> tuple[Path, Path]:
    board = tmp / f"board-{nid}"
    run("board", "init", "--dir", str(board), "--keys", "2", "--threshold", "2")
    keys = NodeKeys.generate()
    info = node_info_document(
        node_id=f"hub-{nid}", name=f"Hub {nid}", disciplines=[], region=nid,
        endpoint=f"https://hub-{nid}.example.org", key_id=keys.key_id,
        verify_key=keys.verify_key_bytes, enc_public_key=keys.enc_public_bytes, roles=["hub"],
    )
    path = tmp / f"hub-{nid}.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    return board, path


def _sign(cdir: Path, board: Path, nid: str, i: int, tmp: Path, tag: str = "") -> str:
    out = tmp / f"sig-{nid}-{i}{tag}.json"
    run("board", "compact", "sign", "--dir", str(cdir), "--network", nid,
        "--key", str(board / "keys" / f"board-key-{i}.json"), "--out", str(out))
    return str(out)


def test_compact_lifecycle_through_the_cli(tmp_path: Path) -> None:
    tx_board, tx_hub = _network(tmp_path, "tx")
    hi_board, hi_hub = _network(tmp_path, "hi")
    cdir = tmp_path / "compact"
    run("board", "compact", "init", "--dir", str(cdir), "--compact-id", "us-peer")
    for nid, board, hub in (("tx", tx_board, tx_hub), ("hi", hi_board, hi_hub)):
        run("board", "compact", "add-network", "--dir", str(cdir), "--network-id", nid,
            "--name", nid.upper(), "--board", str(board / "board.json"), "--hub-info", str(hub))
    sigs = [_sign(cdir, tx_board, "tx", i, tmp_path) for i in (1, 2)]
    hi1 = _sign(cdir, hi_board, "hi", 1, tmp_path)

    # too few of hi's board: refused, nothing written
    res = run("board", "compact", "combine", "--dir", str(cdir), *sigs, hi1, ok=False)
    assert "compact_threshold" in res.output and "hi's board" in res.output
    assert not (cdir / "compacts").exists()
    # a wrong passphrase signs nothing
    res = run("board", "compact", "sign", "--dir", str(cdir), "--network", "hi", "--key",
              str(hi_board / "keys" / "board-key-2.json"), "--out", str(tmp_path / "x.json"),
              ok=False, env={"PEERNET_BOARD_PASSPHRASE": "wrong passphrase!"})
    assert "bad_input" in res.output and not (tmp_path / "x.json").exists()

    hi2 = _sign(cdir, hi_board, "hi", 2, tmp_path)
    res = run("board", "compact", "combine", "--dir", str(cdir), *sigs, hi1, hi2)
    v1_path = cdir / "compacts" / "compact-1.json"
    v1 = parse_compact_document(v1_path.read_bytes())
    assert v1.compact.has("tx") and v1.compact.network("hi").hub_id == "hub-hi"
    res = run("board", "compact", "verify", str(v1_path), "--network", "tx",
              "--pin", str(tx_board / "board.json"))
    assert "tx (TX): 2 of 2" in res.output and "ok: compact version 1" in res.output

    # hi is removed: version 2, signed by tx alone (hi's board is not asked)
    run("board", "compact", "remove-network", "--dir", str(cdir), "hi")
    res = run("board", "compact", "sign", "--dir", str(cdir), "--network", "hi", "--key",
              str(hi_board / "keys" / "board-key-1.json"), "--out", str(tmp_path / "y.json"),
              ok=False)
    assert "not_found" in res.output
    v2_sigs = [_sign(cdir, tx_board, "tx", i, tmp_path, "-v2") for i in (1, 2)]
    # a signature of the old draft does not combine into the new one
    res = run("board", "compact", "combine", "--dir", str(cdir), *sigs, ok=False)
    assert "conflict" in res.output
    run("board", "compact", "combine", "--dir", str(cdir), *v2_sigs)
    v2_path = cdir / "compacts" / "compact-2.json"
    v2 = parse_compact_document(v2_path.read_bytes())
    assert v2.compact.prev_sha256 == v1.sha256 and not v2.compact.has("hi")
    res = run("board", "compact", "verify", str(v2_path), "--prev", str(v1_path))
    assert "ok: compact version 2" in res.output

    # an edited compact file: verify reports it and exits 1
    doc = json.loads(v2_path.read_text())
    doc["compact"]["expires_ts"] = SystemClock().now_ms() + 3_600_000  # not expired yet
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc), encoding="utf-8")
    res = run("board", "compact", "verify", str(edited), "--prev", str(v1_path), ok=False)
    assert "bad_signatures" in res.output
