"""Key files at rest (issue 13, item 4): `write_private` and the argon2id cost a file names.

- A symlink planted at the temp path the old writer used (`<key>.tmp`) or at the key path
  itself: `peernet hub rotate-key` (the real CLI) writes neither through it; the victim file
  is unchanged and the key file is a regular 0600 file (before: the temp file was opened
  with O_CREAT|O_TRUNC, following the link, so the sealed key landed in the victim file).
- A pre-existing `<key>.tmp` with mode 0644 no longer lends its mode to the key file.
- A key file whose header names a tiny argon2id cost is refused (`weak_keyfile`, by the real
  CLI and by `NodeKeys.load`), one naming a huge cost too (`bad_keyfile`) before the KDF
  runs; new files get MODERATE, files written with INTERACTIVE (the old cost) still open.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import nacl.pwhash
import nacl.secret
import nacl.utils
import pytest

from bench.reliability_report import record
from federation.keystore import (
    COST_FLOOR,
    KEYFILE_COST,
    KdfCost,
    KeystoreError,
    NodeKeys,
    write_private,
)
from protocol.encoding import b64u
from tests.demo.test_cli_errors import HUB_PHRASE, _make_board, _ok, _run

_A = nacl.pwhash.argon2id
PHRASE = "key file passphrase 5521"
HUB_ENV = {"PEERNET_HUB_PASSPHRASE": HUB_PHRASE}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _hub(tmp_path: Path) -> tuple[Path, Path]:
    """`peernet hub init` made by the real CLI: (config, hub.key)."""
    board = tmp_path / "board"
    _make_board(board, 1, 1)
    cfg = tmp_path / "hub.toml"
    _ok(["hub", "init", "--config", str(cfg), "--hub-id", "state-hub", "--name", "Hub",
         "--data-dir", str(tmp_path / "hub"), "--public-url", "http://127.0.0.1:9",
         "--board", str(board / "board.json")], HUB_ENV)
    return cfg, tmp_path / "hub" / "hub.key"


def _legacy_sealed(keys: NodeKeys, passphrase: str, ops: int, mem: int) -> bytes:
    """A key file sealed as the old writer did, with whatever cost its header names."""
    salt = nacl.utils.random(_A.SALTBYTES)
    key = _A.kdf(32, passphrase.encode(), salt, opslimit=ops, memlimit=mem)
    box = nacl.secret.SecretBox(key).encrypt(
        json.dumps(keys.to_payload(), sort_keys=True, separators=(",", ":")).encode())
    doc = {"format": "peernet-keyfile-v1", "kdf": "argon2id", "salt": b64u(salt),
           "opslimit": ops, "memlimit": mem, "box": b64u(bytes(box))}
    return json.dumps(doc).encode()


def test_rotate_key_writes_through_no_symlink_and_no_prepared_temp_file(
    tmp_path: Path,
) -> None:
    cfg, key = _hub(tmp_path)
    assert _mode(key) == 0o600
    assert json.loads(key.read_text())["opslimit"] == KEYFILE_COST.opslimit
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"not yours\n")
    tmp = key.with_suffix(key.suffix + ".tmp")
    tmp.symlink_to(victim)
    _ok(["hub", "rotate-key", "--config", str(cfg)], HUB_ENV)
    assert victim.read_bytes() == b"not yours\n"
    assert tmp.is_symlink()  # left alone
    assert not key.is_symlink() and _mode(key) == 0o600
    assert NodeKeys.load(key, HUB_PHRASE).key_version == 2

    # A symlink at the key path itself is replaced, not followed.
    key_bytes = key.read_bytes()
    key.unlink()
    key.symlink_to(victim)
    write_private(key, key_bytes)
    assert victim.read_bytes() == b"not yours\n"
    assert not key.is_symlink() and _mode(key) == 0o600

    # A temp file prepared with mode 0644 does not lend its mode.
    tmp.unlink()
    tmp.write_bytes(b"")
    os.chmod(tmp, 0o644)
    _ok(["hub", "rotate-key", "--config", str(cfg)], HUB_ENV)
    assert _mode(key) == 0o600 and NodeKeys.load(key, HUB_PHRASE).key_version == 3
    assert [p.name for p in key.parent.iterdir() if p.name.endswith(".tmp")] == ["hub.key.tmp"]
    record("security-key-file-writes", area="security",
           case="key file writes through a planted symlink or a prepared temp file",
           how="`peernet hub rotate-key` with a symlink at hub.key.tmp and at hub.key "
               "pointing at another file, and with a 0644 hub.key.tmp prepared",
           result="victim file unchanged; hub.key a regular 0600 file each time",
           figures={"rotations": 2})


def test_a_key_file_naming_a_tiny_cost_is_refused(tmp_path: Path) -> None:
    cfg, key = _hub(tmp_path)
    keys = NodeKeys.load(key, HUB_PHRASE)
    weak = _legacy_sealed(keys, HUB_PHRASE, _A.OPSLIMIT_MIN, _A.MEMLIMIT_MIN)
    key.write_bytes(weak)
    r = _run(["hub", "rotate-key", "--config", str(cfg)], HUB_ENV)
    assert r.exit_code != 0 and "cost below the minimum" in r.output, r.output
    assert key.read_bytes() == weak  # nothing rewritten
    with pytest.raises(KeystoreError) as e:
        NodeKeys.load(key, HUB_PHRASE)
    assert e.value.code == "weak_keyfile"
    # Memory alone below the floor, and a header naming more than the ceiling.
    key.write_bytes(_legacy_sealed(keys, HUB_PHRASE, 4, _A.MEMLIMIT_MIN))
    with pytest.raises(KeystoreError) as e:
        NodeKeys.load(key, HUB_PHRASE)
    assert e.value.code == "weak_keyfile"
    doc = json.loads(weak)
    doc.update(opslimit=2**32, memlimit=2**42)
    key.write_text(json.dumps(doc))
    t0 = time.perf_counter()
    with pytest.raises(KeystoreError) as e:
        NodeKeys.load(key, HUB_PHRASE)
    assert e.value.code == "bad_keyfile" and time.perf_counter() - t0 < 1
    record("security-key-file-cost", area="security",
           case="a key file whose header names a tiny or huge argon2id cost",
           how="hub.key re-sealed with OPSLIMIT_MIN/MEMLIMIT_MIN, then a header naming "
               "2^32 passes and 4 TiB; `peernet hub rotate-key` and NodeKeys.load",
           result="weak_keyfile (below INTERACTIVE), bad_keyfile (above SENSITIVE) before "
                  "the KDF runs; file unchanged",
           figures={"floor_opslimit": COST_FLOOR.opslimit, "floor_memlimit": COST_FLOOR.memlimit})


def test_files_sealed_with_the_old_cost_still_open_and_new_ones_are_stronger(
    tmp_path: Path,
) -> None:
    keys = NodeKeys.generate()
    old = tmp_path / "old.key"
    old.write_bytes(_legacy_sealed(keys, PHRASE, _A.OPSLIMIT_INTERACTIVE,
                                   _A.MEMLIMIT_INTERACTIVE))
    assert NodeKeys.load(old, PHRASE).verify_key_bytes == keys.verify_key_bytes
    assert KEYFILE_COST.opslimit > COST_FLOOR.opslimit
    assert KEYFILE_COST.memlimit > COST_FLOOR.memlimit
    quick = tmp_path / "quick.key"
    keys.save(quick, PHRASE, cost=COST_FLOOR)  # tests may use the floor, never below
    assert json.loads(quick.read_text())["memlimit"] == COST_FLOOR.memlimit
    with pytest.raises(KeystoreError) as e:
        keys.save(tmp_path / "weak.key", PHRASE, cost=KdfCost(1, 8192))
    assert e.value.code == "weak_keyfile" and not (tmp_path / "weak.key").exists()
