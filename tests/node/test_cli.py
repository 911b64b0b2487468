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
    r = runner.invoke(node_group, ["audit", "verify", "--config", str(cfg), "--offline"],
                      env={"PEERNET_PASSPHRASE": PHRASE})  # no hub in this test
    assert r.exit_code == 0 and "audit log intact" in r.output, r.output


def test_wrong_passphrase_is_one_line(tmp_path: Path, sqlite_url: str) -> None:
    runner = CliRunner()
    cfg = _init(runner, tmp_path, sqlite_url)
    r = runner.invoke(node_group, ["audit", "verify", "--config", str(cfg)],
                      env={"PEERNET_PASSPHRASE": "not the passphrase"})
    assert r.exit_code == 1
    assert r.output.strip() == "Error: wrong passphrase for key file [keys]"
    assert "Traceback" not in r.output


@pytest.mark.parametrize("args", [["purge"], ["audit", "verify"], ["serve"]])
def test_missing_config_is_one_line(tmp_path: Path, args: list[str]) -> None:
    r = CliRunner().invoke(node_group, [*args, "--config", str(tmp_path / "none.toml")],
                           env={"PEERNET_PASSPHRASE": PHRASE})
    assert r.exit_code == 1
    assert r.output.strip().startswith("Error: config file not found")
    assert r.output.strip().endswith("[config]")
    assert len(r.output.strip().splitlines()) == 1


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text('node_id = "abc"\nname = "A"\n'
                   'db_url = "postgresql://nobody@127.0.0.1:1/none"\n')
    r = CliRunner().invoke(node_group, ["purge", "--config", str(cfg)])
    assert r.exit_code == 1
    assert r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1
    assert "[db_unreachable]" in r.output and "127.0.0.1" in r.output


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
    assert r.output.strip() == (
        "Error: the passphrase must have at least 12 characters [weak_passphrase]")
    assert not (tmp_path / "n.toml").exists()


def test_init_leaves_secure_cookies_to_the_public_url(tmp_path: Path, sqlite_url: str) -> None:
    """Issue 13 item 10: init used to write `secure_cookies = false`, so moving public_url to
    https later kept cookies insecure. Now the key is absent and derived on every load; set
    explicitly, it still wins."""
    from node.core.config import NodeSettings

    cfg = _init(CliRunner(), tmp_path, sqlite_url)
    text = cfg.read_text()
    assert "secure_cookies" not in text
    assert NodeSettings.load(cfg).secure_cookies is False
    cfg.write_text(text.replace('public_url = ""', 'public_url = "https://node.example"'))
    assert NodeSettings.load(cfg).secure_cookies is True
    cfg.write_text(cfg.read_text() + "secure_cookies = false\n")
    assert NodeSettings.load(cfg).secure_cookies is False
    rewritten = NodeSettings.load(cfg).to_toml()
    assert "secure_cookies = false" in rewritten


def test_config_file_is_owner_only_and_replaces_a_planted_link(tmp_path: Path) -> None:
    from federation.settings import write_config

    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    link = tmp_path / "node.toml"
    link.symlink_to(target)
    write_config(link, "x = 1\n")
    assert target.read_text() == "keep" and not link.is_symlink()
    assert link.stat().st_mode & 0o777 == 0o600


def test_serve_refuses_a_database_never_initialised(tmp_path: Path, db_url: str) -> None:
    """Issue 13 item 7: serve used to create an empty schema and start with no users."""
    from sqlalchemy import inspect

    from federation.database import make_engine

    cfg = _init(CliRunner(), tmp_path, sqlite_url_for(tmp_path))
    fresh = db_url
    text = cfg.read_text().replace(
        f'db_url = "{sqlite_url_for(tmp_path)}"', f'db_url = "{fresh}"')
    cfg.write_text(text)
    r = CliRunner().invoke(node_group, ["serve", "--config", str(cfg), "--port", "1"],
                           env={"PEERNET_PASSPHRASE": PHRASE})
    assert r.exit_code == 1, r.output
    line = r.output.strip()
    assert len(line.splitlines()) == 1 and line.endswith("[not_initialised]"), line
    assert "peernet node init" in line

    async def tables() -> list[str]:
        engine = make_engine(fresh)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: inspect(c).get_table_names())
        finally:
            await engine.dispose()

    import asyncio

    assert asyncio.run(tables()) == []  # nothing was created


def sqlite_url_for(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'first.db'}"


@pytest.mark.parametrize("args", [
    ["user", "add", "sam", "--role", "peer_supporter", "--password-stdin"],
    ["token", "create", "--user", "admin"],
    ["release", "--month", "2026-01"],
])
def test_other_commands_refuse_a_database_never_initialised(
        tmp_path: Path, db_url: str, args: list[str]) -> None:
    """Issue 13 item 7 for every command but init and serve: they used to create the schema
    on a database never initialised and act on an empty node (user add made its first user)."""
    from sqlalchemy import inspect

    from federation.database import make_engine

    cfg = _init(CliRunner(), tmp_path, sqlite_url_for(tmp_path))
    cfg.write_text(cfg.read_text().replace(
        f'db_url = "{sqlite_url_for(tmp_path)}"', f'db_url = "{db_url}"'))
    r = CliRunner().invoke(node_group, [*args, "--config", str(cfg)],
                           input="sam password 12\n", env={"PEERNET_PASSPHRASE": PHRASE})
    assert r.exit_code == 1, r.output
    line = r.output.strip()
    assert len(line.splitlines()) == 1 and line.endswith("[not_initialised]"), line
    assert "peernet node init" in line

    async def tables() -> list[str]:
        engine = make_engine(db_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: inspect(c).get_table_names())
        finally:
            await engine.dispose()

    import asyncio

    assert asyncio.run(tables()) == []  # nothing was created
