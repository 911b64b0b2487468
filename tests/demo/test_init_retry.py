"""`node init` and `hub init` check everything before writing, and a retry after a failure
completes or says exactly what to do (issue 13 item 6). Real CLI, SQLite and PostgreSQL.

Before the fix: a missing config directory failed after keys, tables and the admin were
made ("No such file or directory", or a 30-line traceback for the hub), and every retry then
failed on what the first attempt left ("key file already exists", "username is taken").
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

from click.testing import CliRunner, Result

from node.commands.init import load_leftovers, write_node
from node.core.config import NodeSettings
from node.core.schemas import UserIn
from node.core.vocabulary import Role
from peernet.cli import main

PHRASE = "node passphrase for tests"
HUB_PHRASE = "hub passphrase for tests"
UNREACHABLE = "postgresql://peernet:secretpw@127.0.0.1:9/none"


def _node_init(cfg: Path, data: Path, db_url: str, phrase: str = PHRASE) -> Result:
    return CliRunner().invoke(main, [
        "node", "init", "--config", str(cfg), "--node-id", "metro-fire", "--name", "Metro",
        "--data-dir", str(data), "--db-url", db_url, "--password-stdin",
    ], input="admin password 1\n", env={"PEERNET_PASSPHRASE": phrase})


def _admin_usable(cfg: Path) -> None:
    """The node the config names has its admin (a token can be made for it)."""
    r = CliRunner().invoke(main, ["node", "token", "create", "--config", str(cfg),
                                  "--user", "admin"], env={"PEERNET_PASSPHRASE": PHRASE})
    assert r.exit_code == 0 and r.output.startswith("pn_"), r.output


def _one_line(r: Result, code: str) -> str:
    text = r.output.strip()
    assert r.exit_code == 1, text
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert text.startswith("Error: ") and text.endswith(f"[{code}]"), text
    return text


def test_node_init_creates_a_missing_config_directory(tmp_path: Path, db_url: str) -> None:
    cfg = tmp_path / "etc" / "peernet" / "node.toml"
    r = _node_init(cfg, tmp_path / "data", db_url)
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(cfg.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    _admin_usable(cfg)


def test_node_init_on_an_unreachable_database_writes_nothing_then_completes(
        tmp_path: Path, db_url: str) -> None:
    cfg, data = tmp_path / "node.toml", tmp_path / "data"
    text = _one_line(_node_init(cfg, data, UNREACHABLE), "db_unreachable")
    assert "postgresql://peernet@127.0.0.1:9/none" in text and "secretpw" not in text
    assert not cfg.exists() and not list(data.iterdir())  # no key file, no config
    r = _node_init(cfg, data, db_url)  # the retry, with the right database
    assert r.exit_code == 0, r.output
    assert "node metro-fire initialised" in r.output


def test_node_init_retry_after_a_failure_mid_write_completes(tmp_path: Path,
                                                             db_url: str) -> None:
    """Keys and database written, config not (the process died): the same command again
    reuses the keys and the finished database and writes the config."""
    cfg, data = tmp_path / "node.toml", tmp_path / "data"
    settings = NodeSettings.load(None, node_id="metro-fire", name="Metro", data_dir=data,
                                 db_url=db_url)
    data.mkdir()
    plan = load_leftovers(settings, PHRASE)
    admin = UserIn(username="admin", password="admin password 1", role=Role.ADMIN, team="main")
    asyncio.run(write_node(settings, plan, admin, PHRASE))
    key_before = settings.key_path.read_bytes()
    # A different passphrase: refused, with the command that removes the leftover.
    text = _one_line(_node_init(cfg, data, db_url, "another long passphrase"),
                     "key_file_exists")
    assert f"rm {settings.key_path}" in text
    r = _node_init(cfg, data, db_url)
    assert r.exit_code == 0, r.output
    assert settings.key_path.read_bytes() == key_before and cfg.exists()
    _admin_usable(cfg)


def test_node_init_refuses_a_database_holding_another_node(tmp_path: Path,
                                                           db_url: str) -> None:
    assert _node_init(tmp_path / "a.toml", tmp_path / "a", db_url).exit_code == 0
    cfg, data = tmp_path / "b.toml", tmp_path / "b"
    _one_line(_node_init(cfg, data, db_url), "db_not_empty")
    assert not cfg.exists() and not (data / "node.key").exists()


def test_node_init_refuses_a_short_passphrase_before_writing(tmp_path: Path,
                                                             sqlite_url: str) -> None:
    cfg, data = tmp_path / "node.toml", tmp_path / "data"
    _one_line(_node_init(cfg, data, sqlite_url, "short"), "weak_passphrase")
    assert not cfg.exists() and not data.exists()


def _board(tmp_path: Path) -> Path:
    board = tmp_path / "board"
    r = CliRunner().invoke(main, ["board", "init", "--dir", str(board), "--keys", "1",
                                  "--threshold", "1"],
                           env={"PEERNET_BOARD_PASSPHRASE": "board passphrase for tests"})
    assert r.exit_code == 0, r.output
    return board / "board.json"


def _hub_init(tmp_path: Path, cfg: Path, db_url: str, board: Path) -> Result:
    return CliRunner().invoke(main, [
        "hub", "init", "--config", str(cfg), "--hub-id", "state-hub", "--name", "Hub",
        "--data-dir", str(tmp_path / "hub"), "--db-url", db_url,
        "--public-url", "http://127.0.0.1:9", "--board", str(board),
    ], env={"PEERNET_HUB_PASSPHRASE": HUB_PHRASE})


def test_hub_init_missing_config_dir_unreachable_db_then_retry(tmp_path: Path,
                                                               db_url: str) -> None:
    board = _board(tmp_path)
    cfg = tmp_path / "etc" / "hub.toml"  # its directory does not exist
    _one_line(_hub_init(tmp_path, cfg, UNREACHABLE, board), "db_unreachable")
    assert not (tmp_path / "hub" / "hub.key").exists() and not cfg.exists()
    r = _hub_init(tmp_path, cfg, db_url, board)
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    info = json.loads((tmp_path / "hub" / "hub-info.json").read_text())
    assert "state-hub" in json.dumps(info)


def test_hub_init_reuses_a_leftover_key(tmp_path: Path, sqlite_url: str) -> None:
    from federation.keystore import NodeKeys

    board = _board(tmp_path)
    (tmp_path / "hub").mkdir()
    keys = NodeKeys.generate()
    keys.save(tmp_path / "hub" / "hub.key", HUB_PHRASE)
    r = _hub_init(tmp_path, tmp_path / "hub.toml", sqlite_url, board)
    assert r.exit_code == 0, r.output
    from protocol.encoding import b64u

    assert b64u(keys.verify_key_bytes) in r.output
