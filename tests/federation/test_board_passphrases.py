"""Each board key holder may use their own passphrase (issue 13, item 13): `board init
--passphrase-per-key` seals key i under holder i's passphrase, `board reseal` changes one
file's; a wrong or short passphrase is refused with a stable code and nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from federation.board_cli import board_group
from federation.board_keys import load_board_key
from federation.errors import FederationError

PHRASES = {i: f"holder {i} own passphrase" for i in (1, 2, 3)}


def _run(args: list[str], env: dict[str, str], stdin: str | None = None) -> tuple[int, str]:
    res = CliRunner().invoke(board_group, args, env=env, input=stdin, catch_exceptions=False)
    return res.exit_code, res.output


def _init_per_key(d: Path) -> list[Path]:
    env = {f"PEERNET_BOARD_PASSPHRASE_{i}": p for i, p in PHRASES.items()}
    env["PEERNET_BOARD_PASSPHRASE"] = ""
    code, out = _run(["init", "--dir", str(d), "--keys", "3", "--threshold", "2",
                      "--passphrase-per-key"], env)
    assert code == 0, out
    return [d / "keys" / f"board-key-{i}.json" for i in (1, 2, 3)]


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_init_seals_each_key_under_its_holders_passphrase(tmp_path: Path) -> None:
    files = _init_per_key(tmp_path / "board")
    for i, path in enumerate(files, start=1):
        load_board_key(path, PHRASES[i])
        other = PHRASES[i % 3 + 1]
        with pytest.raises(FederationError) as err:
            load_board_key(path, other)
        assert err.value.code == "bad_input" and "wrong passphrase" in err.value.message
    # Holder 2 signs with their own passphrase, named by --passphrase-env.
    code, out = _run(["sign", "--dir", str(tmp_path / "board"), "--key", str(files[1]),
                      "--out", str(tmp_path / "sig.json"), "--passphrase-env", "MY_PHRASE"],
                     {"MY_PHRASE": PHRASES[2]})
    assert code == 0, out


def test_init_prompts_once_per_holder(tmp_path: Path) -> None:
    d = tmp_path / "board"
    answers = "".join(f"{p}\n{p}\n" for p in (PHRASES[1], PHRASES[2]))
    code, out = _run(["init", "--dir", str(d), "--keys", "2", "--threshold", "1",
                      "--passphrase-per-key"], {"PEERNET_BOARD_PASSPHRASE": ""}, stdin=answers)
    assert code == 0, out
    assert "board key 1's holder" in out and "board key 2's holder" in out
    load_board_key(d / "keys" / "board-key-2.json", PHRASES[2])


def test_init_with_one_short_passphrase_writes_nothing(tmp_path: Path) -> None:
    d = tmp_path / "board"
    env = {"PEERNET_BOARD_PASSPHRASE_1": PHRASES[1], "PEERNET_BOARD_PASSPHRASE_2": "short"}
    code, out = _run(["init", "--dir", str(d), "--keys", "2", "--threshold", "1",
                      "--passphrase-per-key"], env)
    assert code == 1 and "bad_input" in out and "12 characters" in out
    assert not d.exists() or not any(d.rglob("*"))


def test_reseal_changes_one_files_passphrase(tmp_path: Path) -> None:
    files = _init_per_key(tmp_path / "board")
    before = {p: p.read_bytes() for p in files}
    new = "holder 1 chose this later"
    code, out = _run(["reseal", "--key", str(files[0])],
                     {"PEERNET_BOARD_PASSPHRASE": PHRASES[1],
                      "PEERNET_BOARD_NEW_PASSPHRASE": new})
    assert code == 0 and "board key 1 re-sealed" in out, out
    key = load_board_key(files[0], new)
    with pytest.raises(FederationError):
        load_board_key(files[0], PHRASES[1])
    assert files[0].stat().st_mode & 0o077 == 0
    assert [files[1].read_bytes(), files[2].read_bytes()] == [before[files[1]], before[files[2]]]
    # Same key, new seal: a signature with it still counts towards the threshold.
    assert bytes(key.verify_key) != b""
    code, out = _run(["sign", "--dir", str(tmp_path / "board"), "--key", str(files[0]),
                      "--out", str(tmp_path / "s1.json")], {"PEERNET_BOARD_PASSPHRASE": new})
    assert code == 0, out


def test_reseal_prompts_for_the_new_passphrase(tmp_path: Path) -> None:
    files = _init_per_key(tmp_path / "board")
    new = "typed at the prompt twice"
    code, out = _run(["reseal", "--key", str(files[2])],
                     {"PEERNET_BOARD_PASSPHRASE": PHRASES[3]}, stdin=f"{new}\n{new}\n")
    assert code == 0, out
    load_board_key(files[2], new)


@pytest.mark.parametrize("old,new,expect", [
    ("not the holder's passphrase", "a perfectly long new one", "wrong passphrase"),
    (PHRASES[1], "too short", "12 characters"),
])
def test_reseal_refusals_change_nothing(tmp_path: Path, old: str, new: str, expect: str) -> None:
    d = tmp_path / "board"
    files = _init_per_key(d)
    before = _snapshot(d)
    code, out = _run(["reseal", "--key", str(files[0])],
                     {"PEERNET_BOARD_PASSPHRASE": old, "PEERNET_BOARD_NEW_PASSPHRASE": new})
    assert code == 1 and "bad_input" in out and expect in out, out
    assert "Traceback" not in out
    assert _snapshot(d) == before
    load_board_key(files[0], PHRASES[1])


def test_reseal_of_a_missing_file_is_not_found(tmp_path: Path) -> None:
    code, out = _run(["reseal", "--key", str(tmp_path / "none.json")],
                     {"PEERNET_BOARD_PASSPHRASE": PHRASES[1],
                      "PEERNET_BOARD_NEW_PASSPHRASE": "a perfectly long new one"})
    assert code == 1 and "not_found" in out
