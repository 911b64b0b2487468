from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import node_group

PHRASE = "a long enough passphrase"


def _init(runner: CliRunner, tmp_path: Path, db_url: str) -> Path:
    cfg = tmp_path / "node.toml"
    r = runner.invoke(node_group, [
        "init", "--config", str(cfg), "--node-id", "metro-fire", "--name", "Metro Fire",
        "--data-dir", str(tmp_path / "data"), "--db-url", db_url, "--discipline", "fire",
        "--password-stdin",
    ], input="admin password 1\n", env={"PEERNET_PASSPHRASE": PHRASE})
    assert r.exit_code == 0, r.output
    assert "signing key ed25519:1" in r.output
    return cfg


def test_init_then_manage_and_verify(tmp_path: Path, db_url: str) -> None:
    runner = CliRunner()
    cfg = _init(runner, tmp_path, db_url)
    assert "passphrase" not in cfg.read_text()
    assert (tmp_path / "data" / "node.key").stat().st_mode & 0o077 == 0
    r = runner.invoke(node_group, ["user", "add", "--config", str(cfg), "sam",
                                   "--role", "peer_supporter", "--password-stdin"],
                      input="sam password 12\n")
    assert r.exit_code == 0 and "user sam" in r.output, r.output
    r = runner.invoke(node_group, ["token", "create", "--config", str(cfg), "--user", "sam"])
    assert r.exit_code == 0 and r.output.startswith("pn_"), r.output
    r = runner.invoke(node_group, ["purge", "--config", str(cfg), "--days", "30"])
    assert r.exit_code == 0 and "purged 0" in r.output, r.output
    r = runner.invoke(node_group, ["audit", "verify", "--config", str(cfg)],
                      env={"PEERNET_PASSPHRASE": PHRASE})
    assert r.exit_code == 0 and "audit log intact" in r.output, r.output


def test_wrong_passphrase_is_one_line(tmp_path: Path, sqlite_url: str) -> None:
    runner = CliRunner()
    cfg = _init(runner, tmp_path, sqlite_url)
    r = runner.invoke(node_group, ["audit", "verify", "--config", str(cfg)],
                      env={"PEERNET_PASSPHRASE": "not the passphrase"})
    assert r.exit_code == 1
    assert r.output.strip() == "error: wrong passphrase for key file"
    assert "Traceback" not in r.output


@pytest.mark.parametrize("args", [["purge"], ["audit", "verify"], ["serve"]])
def test_missing_config_is_one_line(tmp_path: Path, args: list[str]) -> None:
    r = CliRunner().invoke(node_group, [*args, "--config", str(tmp_path / "none.toml")],
                           env={"PEERNET_PASSPHRASE": PHRASE})
    assert r.exit_code == 1
    assert r.output.strip().startswith("error: config file not found")
    assert len(r.output.strip().splitlines()) == 1


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text('node_id = "abc"\nname = "A"\n'
                   'db_url = "postgresql://nobody@127.0.0.1:1/none"\n')
    r = CliRunner().invoke(node_group, ["purge", "--config", str(cfg)])
    assert r.exit_code == 1
    assert r.output.startswith("error: ") and len(r.output.strip().splitlines()) == 1


def test_port_in_use_is_one_line(tmp_path: Path, sqlite_url: str) -> None:
    runner = CliRunner()
    cfg = _init(runner, tmp_path, sqlite_url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = runner.invoke(node_group, ["serve", "--config", str(cfg), "--port", str(port)],
                          env={"PEERNET_PASSPHRASE": PHRASE})
    assert r.exit_code == 1, r.output
    assert "address already in use" in r.output.splitlines()[-1]
    assert "Traceback" not in r.output


def test_init_refuses_short_passphrase(tmp_path: Path, sqlite_url: str) -> None:
    r = CliRunner().invoke(node_group, [
        "init", "--config", str(tmp_path / "n.toml"), "--node-id", "abc", "--name", "A",
        "--data-dir", str(tmp_path / "d"), "--db-url", sqlite_url, "--password-stdin",
    ], input="admin password 1\n", env={"PEERNET_PASSPHRASE": "short"})
    assert r.exit_code == 1
    assert r.output.strip() == "error: passphrase must have at least 12 characters"
    assert not (tmp_path / "n.toml").exists()
