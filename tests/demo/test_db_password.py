"""The database password from the environment or a password file instead of the URL, and
config files written owner-only (issue 13 item 4, config part). Real CLI, real PostgreSQL
with password authentication (its own throwaway server: the shared one trusts every login).
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from peernet.cli import main
from peernet.throwaway_pg import ThrowawayPostgres, _binary, start_throwaway

PHRASE = "node passphrase for tests"
USER, PASSWORD = "pwuser", "s3cret-db-pass"


@pytest.fixture(scope="module")
def pw_server() -> Iterator[ThrowawayPostgres]:
    pg = start_throwaway()
    try:
        hba = pg.data_dir / "pg_hba.conf"
        hba.write_text(f"local all {USER} scram-sha-256\n" + hba.read_text())
        pg._run([_binary("pg_ctl"), "-D", str(pg.data_dir), "reload"])

        async def setup() -> None:
            import asyncpg

            conn = await asyncpg.connect(user=pg.user, host=str(pg.socket_dir),
                                         database="postgres")
            try:
                await conn.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
                for name in ("env_db", "file_db", "wrong_db"):
                    await conn.execute(f'CREATE DATABASE "{name}" OWNER {USER}')
            finally:
                await conn.close()

        asyncio.run(setup())
        yield pg
    finally:
        pg.stop()


def _url(pg: ThrowawayPostgres, db: str) -> str:
    return f"postgresql://{USER}@/{db}?host={pg.socket_dir}"


def _init(tmp_path: Path, url: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, [
        "node", "init", "--config", str(tmp_path / "node.toml"), "--node-id", "metro-fire",
        "--name", "Metro", "--data-dir", str(tmp_path / "data"), "--db-url", url,
        "--password-stdin",
    ], input="admin password 1\n", env={"PEERNET_PASSPHRASE": PHRASE, **env})


def _token(cfg: Path, env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, ["node", "token", "create", "--config", str(cfg),
                                     "--user", "admin"],
                              env={"PEERNET_PASSPHRASE": PHRASE, **env})


def test_password_from_the_environment(tmp_path: Path, pw_server: ThrowawayPostgres) -> None:
    env = {"PEERNET_DB_PASSWORD": PASSWORD}
    r = _init(tmp_path, _url(pw_server, "env_db"), env)
    assert r.exit_code == 0, r.output
    cfg = tmp_path / "node.toml"
    text = cfg.read_text()
    assert PASSWORD not in text and "db_password" not in text
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    r = _token(cfg, env)  # a later command connects with the password from the environment
    assert r.exit_code == 0 and r.output.startswith("pn_"), r.output
    r = _token(cfg, {"PEERNET_DB_PASSWORD": "not the password"})
    line = r.output.strip()
    assert r.exit_code == 1 and len(line.splitlines()) == 1, line
    assert line.startswith("Error: ") and line.endswith("[db_login]"), line
    assert "not the password" not in line and "env_db" in line


def test_password_from_a_file(tmp_path: Path, pw_server: ThrowawayPostgres) -> None:
    secret = tmp_path / "db-password"
    secret.write_text(PASSWORD + "\n")
    env = {"PEERNET_DB_PASSWORD_FILE": str(secret)}
    r = _init(tmp_path, _url(pw_server, "file_db"), env)
    assert r.exit_code == 0, r.output
    cfg = tmp_path / "node.toml"
    assert f'db_password_file = "{secret}"' in cfg.read_text()  # the path, not the secret
    assert PASSWORD not in cfg.read_text()
    r = _token(cfg, {})  # the file named in the config is read; nothing in the environment
    assert r.exit_code == 0 and r.output.startswith("pn_"), r.output
    secret.write_text("wrong\n")
    r = _token(cfg, {})
    line = r.output.strip()
    assert r.exit_code == 1 and line.endswith("[db_login]") and "wrong" not in line, line


def test_init_with_a_wrong_password_writes_nothing(tmp_path: Path,
                                                  pw_server: ThrowawayPostgres) -> None:
    r = _init(tmp_path, _url(pw_server, "wrong_db"), {"PEERNET_DB_PASSWORD": "nope nope"})
    line = r.output.strip()
    assert r.exit_code == 1 and len(line.splitlines()) == 1, line
    assert line.endswith("[db_login]") and "nope" not in line, line
    assert not (tmp_path / "node.toml").exists()
    assert not (tmp_path / "data" / "node.key").exists()
