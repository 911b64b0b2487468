"""One error style across the CLI, databases named plainly, and secrets asked for without
getpass's warning or an echo (issue 13 item 9). The real `peernet` command: in-process
(CliRunner) for the error lines, as a child process for what only a real stdin shows (a
pipe, a terminal).

Before the fix: `mysql://` gave a 40-line traceback, an unknown host "Error: error: [Errno
-2] Name or service not known", prefixes varied (`error:`, `Error: keys:`, `Error:
bad_input:`), a missing passphrase showed Python's GetPassWarning, and `--password-stdin`
at a terminal echoed the password.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from peernet.cli import main

PHRASE = "node passphrase for tests"
LINE = re.compile(r"^Error: [^\n]+ \[[a-z_]+\]$")
ROOT = Path(__file__).resolve().parents[2]


def _init_args(tmp_path: Path, db_url: str) -> list[str]:
    return ["node", "init", "--config", str(tmp_path / "node.toml"), "--node-id",
            "metro-fire", "--name", "Metro", "--data-dir", str(tmp_path / "data"),
            "--db-url", db_url, "--password-stdin"]


def _line(r: Result) -> str:
    text = r.output.strip()
    assert r.exit_code == 1, text
    assert LINE.match(text), text
    return text


@pytest.mark.parametrize(("url", "code", "shown"), [
    ("mysql://peernet:hunter22@db.example/peernet", "db_url", "mysql://peernet@db.example"),
    ("postgresql://peernet:hunter22@no-such-host.invalid/peernet", "db_unreachable",
     "'no-such-host.invalid'"),
])
def test_database_urls_give_one_line_naming_the_database(tmp_path: Path, url: str,
                                                         code: str, shown: str) -> None:
    r = CliRunner().invoke(main, _init_args(tmp_path, url), input="admin password 1\n",
                           env={"PEERNET_PASSPHRASE": PHRASE})
    text = _line(r)
    assert text.endswith(f"[{code}]") and shown in text and "hunter22" not in text, text
    assert not (tmp_path / "node.toml").exists()


def test_every_group_uses_the_same_style(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.toml")
    lines = [
        _line(CliRunner().invoke(main, ["node", "purge", "--config", missing])),
        _line(CliRunner().invoke(main, ["hub", "serve", "--config", missing],
                                 env={"PEERNET_HUB_PASSPHRASE": "hub passphrase 123"})),
        _line(CliRunner().invoke(main, ["board", "add-node", "--dir", str(tmp_path / "b"),
                                        "--info", str(tmp_path / "info.json")])),
    ]
    assert all(" error:" not in ln.lower()[6:] for ln in lines), lines


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERNET_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _peernet(args: list[str], env: dict[str, str], stdin: str = ""
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / ".venv" / "bin" / "peernet"), *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120, check=False,
                          start_new_session=True)


@pytest.mark.parametrize(("args", "variable"), [
    (["node", "serve"], "PEERNET_PASSPHRASE"),
    (["hub", "serve"], "PEERNET_HUB_PASSPHRASE"),
])
def test_a_missing_passphrase_names_its_variable(tmp_path: Path, args: list[str],
                                                 variable: str) -> None:
    cfg = tmp_path / "x.toml"
    cfg.write_text('node_id = "metro-fire"\nname = "M"\n' if args[0] == "node" else
                   'hub_id = "state-hub"\nname = "H"\n')
    res = _peernet([*args, "--config", str(cfg)], _child_env({}))  # stdin: empty pipe
    assert res.returncode == 1, res.stderr
    assert "GetPassWarning" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert f"(or set {variable})" in res.stderr  # the prompt's hint
    last = res.stderr.strip().splitlines()[-1]
    assert LINE.match(last) and variable in last, res.stderr


def test_password_stdin_at_a_terminal_is_not_echoed(tmp_path: Path, sqlite_url: str) -> None:
    r = CliRunner().invoke(main, _init_args(tmp_path, sqlite_url), input="admin password 1\n",
                           env={"PEERNET_PASSPHRASE": PHRASE})
    assert r.exit_code == 0, r.output
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "peernet"), "node", "user", "add", "sam", "--role",
         "coordinator", "--config", str(tmp_path / "node.toml"), "--password-stdin"],
        stdin=slave, stdout=slave, stderr=slave, env=_child_env({}), start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        seen += _read_until(master, b"Password", 60)
        os.write(master, b"typed secret 99\n")
        seen += _read_until(master, b"added", 60)
        assert proc.wait(timeout=60) == 0, seen
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert b"typed secret 99" not in seen, seen  # the terminal did not echo it
    assert b"user sam (coordinator" in seen, seen


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out
