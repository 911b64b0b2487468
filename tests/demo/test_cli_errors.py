"""Operator mistakes on the commands the demo and the README use: one clear line on
stderr, a non-zero exit, never a traceback.

Cases: a wrong passphrase, a missing config, an unreachable database, a roster not signed
by the pinned board, a port in use; for `board`, `roster`, `hub` and `node` commands.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from peernet.cli import main

BOARD_PHRASE = "board passphrase for tests"
HUB_PHRASE = "hub passphrase for tests"
NODE_PHRASE = "node passphrase for tests"
UNREACHABLE = "postgresql://peernet:x@127.0.0.1:9/none"  # discard port: nothing listens


@dataclass
class Setup:
    root: Path
    board: Path
    hub_cfg: Path
    node_cfg: Path
    roster: Path
    foreign_roster: Path


def _run(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, args, env=env or {}, input=stdin)


def _ok(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    r = _run(args, env, stdin)
    assert r.exit_code == 0, r.output
    return r.output


def _make_board(d: Path, keys: int, threshold: int) -> None:
    _ok(["board", "init", "--dir", str(d), "--keys", str(keys), "--threshold", str(threshold)],
        {"PEERNET_BOARD_PASSPHRASE": BOARD_PHRASE})


def _sign_and_combine(d: Path, n: int) -> Path:
    """Sign the draft with the first `n` board keys and combine; the new roster's path."""
    sigs = []
    for i in range(1, n + 1):
        out = d / f"sig-{i}.json"
        out.unlink(missing_ok=True)  # a signature of an earlier draft
        _ok(["board", "sign", "--dir", str(d), "--key", str(d / "keys" / f"board-key-{i}.json"),
             "--out", str(out)], {"PEERNET_BOARD_PASSPHRASE": BOARD_PHRASE})
        sigs.append(str(out))
    _ok(["board", "combine", "--dir", str(d), *sigs])
    return max((d / "rosters").glob("roster-*.json"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("cli-errors")
    board = root / "board"
    _make_board(board, 2, 2)
    hub_cfg = root / "hub.toml"
    _ok(["hub", "init", "--config", str(hub_cfg), "--hub-id", "state-hub", "--name", "Hub",
         "--data-dir", str(root / "hub"), "--public-url", "http://127.0.0.1:9",
         "--board", str(board / "board.json")], {"PEERNET_HUB_PASSPHRASE": HUB_PHRASE})
    keys = json.loads((board / "board.json").read_text())["keys"]
    node_cfg = root / "node.toml"
    _ok(["node", "init", "--config", str(node_cfg), "--node-id", "metro-fire", "--name", "Fire",
         "--data-dir", str(root / "node"), "--discipline", "fire", "--region", "north",
         "--password-stdin"],
        {"PEERNET_PASSPHRASE": NODE_PHRASE, "PEERNET_PUBLIC_URL": "http://127.0.0.1:9",
         "PEERNET_BOARD_KEYS": json.dumps(keys), "PEERNET_BOARD_THRESHOLD": "2"},
        stdin="admin password 1\n")
    _ok(["board", "add-node", "--dir", str(board), "--info", str(root / "hub" / "hub-info.json")])
    roster = _sign_and_combine(board, 2)
    other = root / "other-board"
    _make_board(other, 1, 1)
    foreign = _sign_and_combine(other, 1)
    yield Setup(root, board, hub_cfg, node_cfg, roster, foreign)


def _one_line_failure(r: Result, *needles: str) -> str:
    text = r.output.strip()
    assert r.exit_code != 0, text
    assert "Traceback" not in text, text
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert len(text.splitlines()) == 1, text
    for n in needles:
        assert n.lower() in text.lower(), text
    return text


# --- wrong passphrase -------------------------------------------------------------------


def test_board_sign_with_a_wrong_passphrase(setup: Setup, tmp_path: Path) -> None:
    r = _run(["board", "sign", "--dir", str(setup.board), "--key",
              str(setup.board / "keys" / "board-key-1.json"), "--out", str(tmp_path / "s.json")],
             {"PEERNET_BOARD_PASSPHRASE": "not the passphrase"})
    _one_line_failure(r, "passphrase")
    assert not (tmp_path / "s.json").exists()


def test_hub_serve_with_a_wrong_passphrase(setup: Setup) -> None:
    r = _run(["hub", "serve", "--config", str(setup.hub_cfg)],
             {"PEERNET_HUB_PASSPHRASE": "not the passphrase"})
    _one_line_failure(r, "passphrase")


@pytest.mark.parametrize("cmd", [["serve"], ["public-info"], ["audit", "verify"],
                                 ["rotate-key"]])
def test_node_commands_with_a_wrong_passphrase(setup: Setup, cmd: list[str]) -> None:
    key_file = setup.root / "node" / "node.key"
    before = key_file.read_bytes()
    r = _run(["node", *cmd, "--config", str(setup.node_cfg)],
             {"PEERNET_PASSPHRASE": "not the passphrase"})
    _one_line_failure(r, "passphrase")
    assert key_file.read_bytes() == before


def test_hub_rotate_key_with_a_wrong_passphrase(setup: Setup) -> None:
    key_file = setup.root / "hub" / "hub.key"
    before = key_file.read_bytes()
    r = _run(["hub", "rotate-key", "--config", str(setup.hub_cfg)],
             {"PEERNET_HUB_PASSPHRASE": "not the passphrase"})
    _one_line_failure(r, "passphrase")
    assert key_file.read_bytes() == before


# --- missing config -----------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["hub", "serve"], ["hub", "install-roster", "roster.json"],
    ["node", "serve"], ["node", "public-info"], ["node", "user", "add", "sam", "--role",
                                                   "coordinator", "--password-stdin"],
    ["node", "rotate-key"], ["hub", "rotate-key"],
])
def test_a_missing_config_file(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "none.toml"
    r = _run([*args, "--config", str(missing)],
             {"PEERNET_PASSPHRASE": NODE_PHRASE, "PEERNET_HUB_PASSPHRASE": HUB_PHRASE},
             stdin="a password 123\n")
    _one_line_failure(r, "not found")


def test_a_missing_board_directory(tmp_path: Path) -> None:
    r = _run(["board", "add-node", "--dir", str(tmp_path / "nope"), "--info",
              str(tmp_path / "info.json")])
    _one_line_failure(r)


def test_roster_verify_of_a_missing_file(setup: Setup, tmp_path: Path) -> None:
    r = _run(["roster", "verify", str(tmp_path / "nope.json"), "--pin",
              str(setup.board / "board.json")])
    _one_line_failure(r)


# --- unreachable database -----------------------------------------------------------------


def _config_with_db(src: Path, dst: Path, url: str) -> Path:
    lines = [ln for ln in src.read_text().splitlines() if not ln.startswith("db_url")]
    dst.write_text("\n".join([*lines, f"db_url = {json.dumps(url)}"]) + "\n")
    return dst


def test_node_user_add_with_an_unreachable_database(setup: Setup, tmp_path: Path) -> None:
    cfg = _config_with_db(setup.node_cfg, tmp_path / "node.toml", UNREACHABLE)
    r = _run(["node", "user", "add", "--config", str(cfg), "sam", "--role", "coordinator",
              "--password-stdin"], stdin="a password 123\n")
    _one_line_failure(r, "database")


def test_node_serve_with_an_unreachable_database(setup: Setup, tmp_path: Path) -> None:
    cfg = _config_with_db(setup.node_cfg, tmp_path / "node.toml", UNREACHABLE)
    r = _run(["node", "serve", "--config", str(cfg), "--port", str(_free_port())],
             {"PEERNET_PASSPHRASE": NODE_PHRASE})
    _one_line_failure(r)


def test_hub_install_roster_with_an_unreachable_database(setup: Setup, tmp_path: Path) -> None:
    cfg = _config_with_db(setup.hub_cfg, tmp_path / "hub.toml", UNREACHABLE)
    r = _run(["hub", "install-roster", "--config", str(cfg), str(setup.roster)])
    _one_line_failure(r, "database")


def test_hub_serve_with_an_unreachable_database(setup: Setup, tmp_path: Path) -> None:
    cfg = _config_with_db(setup.hub_cfg, tmp_path / "hub.toml", UNREACHABLE)
    r = _run(["hub", "serve", "--config", str(cfg), "--port", str(_free_port())],
             {"PEERNET_HUB_PASSPHRASE": HUB_PHRASE})
    _one_line_failure(r)


# --- a roster not signed by the pinned board ----------------------------------------------


def test_hub_refuses_a_roster_of_another_board(setup: Setup) -> None:
    r = _run(["hub", "install-roster", "--config", str(setup.hub_cfg),
              str(setup.foreign_roster)])
    _one_line_failure(r)


def test_roster_verify_refuses_a_roster_of_another_board(setup: Setup) -> None:
    r = _run(["roster", "verify", str(setup.foreign_roster), "--pin",
              str(setup.board / "board.json")])
    _one_line_failure(r)


# --- a port in use ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        yield int(s.getsockname()[1])
    finally:
        s.close()


def test_node_serve_on_a_port_in_use(setup: Setup, busy_port: int) -> None:
    r = _run(["node", "serve", "--config", str(setup.node_cfg), "--port", str(busy_port)],
             {"PEERNET_PASSPHRASE": NODE_PHRASE})
    _one_line_failure(r, "in use")


def test_hub_serve_on_a_port_in_use(setup: Setup, busy_port: int) -> None:
    r = _run(["hub", "serve", "--config", str(setup.hub_cfg), "--port", str(busy_port)],
             {"PEERNET_HUB_PASSPHRASE": HUB_PHRASE})
    _one_line_failure(r, "in use")
