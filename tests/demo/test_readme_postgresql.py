"""The README's "Running a real node and hub on PostgreSQL" steps, run as written.

The shell blocks of that section are taken from README.md (so this test breaks when the
README changes) and run, in order, as one bash script against a throwaway PostgreSQL whose
superuser is `postgres`, as on a packaged server, and whose other roles must give their
password (so the README's way of passing it is used). The only changes, made by `_adapt`:

| README                                   | here                                              |
| ---------------------------------------- | ------------------------------------------------- |
| `sudo -u postgres ` before a command     | dropped (PGHOST/PGUSER point at the throwaway)    |
| `/etc/peernet`, `/var/lib/peernet`       | directories under the test's tmp_path             |
| `@db.<...>.example/<db>` in a URL        | `@/<db>?host=<throwaway's socket directory>`      |
| `https://hub.state.example`, port 8090   | `http://127.0.0.1:<free port>`                    |
| `https://peernet.metrofire.example`, 8080| `http://127.0.0.1:<free port>`                    |
| `0.0.0.0`                                | `127.0.0.1`                                       |
| `NAME=...`                               | `NAME=<the test's value for NAME>` (SECRETS)      |
| a line with `--password-stdin`/`--pwprompt` | the test's password on its stdin               |
| a `... serve ...` line                   | started in the background; the script waits for   |
|                                          | its /healthz before going on                      |

It ends with a verified roster, a served hub and node answering /healthz, the node holding
the board-signed roster, the hub user and the node coordinator logging in, and an activation
CLI call with a token made by the README's `node token create`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from peernet.throwaway_pg import PostgresUnavailable, ThrowawayPostgres, _binary

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Running a real node and hub on PostgreSQL"
PASSWORD = "readme user password"  # every --password-stdin and --pwprompt
SECRETS = {
    "PEERNET_BOARD_PASSPHRASE_1": "holder one passphrase",
    "PEERNET_BOARD_PASSPHRASE_2": "holder two passphrase",
    "PEERNET_BOARD_PASSPHRASE_3": "holder three passphrase",
    "PEERNET_HUB_PASSPHRASE": "hub key passphrase",
    "PEERNET_PASSPHRASE": "node key passphrase",
    "PEERNET_DB_PASSWORD": PASSWORD,
    "PEERNET_HUB_DB_PASSWORD": PASSWORD,
    "PEERNET_HUB_OPERATOR_TOKEN": "operator token for the readme test",
}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')

PRELUDE = r"""
set -euo pipefail
wait_healthy() {
  python3 - "$1" <<'PY'
import sys, time, urllib.request
for _ in range(300):
    try:
        with urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=1) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("not healthy: " + sys.argv[1])
PY
}
"""


def section_blocks(readme: str) -> list[str]:
    start = readme.index(SECTION)
    end = readme.index("\n## ", start + len(SECTION))
    return re.findall(r"```sh\n(.*?)```", readme[start:end], re.S)


def _logical(block: str) -> list[str]:
    return re.sub(r"\\\n\s*", " ", block).splitlines()


def _adapt(line: str, sub: dict[str, str]) -> str:
    line = line.replace("sudo -u postgres ", "")
    line = re.sub(r"@db\.[a-z.]+\.example/(\w+)", rf"@/\1?host={sub['socket']}", line)
    line = line.replace("/etc/peernet", sub["etc"]).replace("/var/lib/peernet", sub["var"])
    line = line.replace("https://hub.state.example", sub["hub_url"])
    line = line.replace("https://peernet.metrofire.example", sub["node_url"])
    line = re.sub(r"\b8090\b", sub["hub_port"], line)
    line = re.sub(r"\b8080\b", sub["node_port"], line)
    line = line.replace("0.0.0.0", "127.0.0.1")  # noqa: S104 (the README's, replaced)

    def secret(m: re.Match[str]) -> str:
        name = m.group(1)
        assert name in SECRETS, f"README asks for {name}=...: add a test value to SECRETS"
        return f"{name}='{SECRETS[name]}'"

    line = re.sub(r"\b([A-Z][A-Z0-9_]*)=\.\.\.", secret, line)
    code = line.split(" #", 1)[0].rstrip()
    if "--password-stdin" in code:
        line = f"{code} <<< '{PASSWORD}'"
    elif "--pwprompt" in code:
        line = f"{code} <<< $'{PASSWORD}\\n{PASSWORD}'"
    m = re.search(r"\bpeernet (hub|node) serve\b", code)
    if m:
        url = sub["hub_url"] if m.group(1) == "hub" else sub["node_url"]
        line = f"{code} > {sub['logs']}/{m.group(1)}.log 2>&1 &\nwait_healthy {url}"
    return line


def readme_script(sub: dict[str, str]) -> str:
    blocks = section_blocks((ROOT / "README.md").read_text())
    body = "\n".join(_adapt(line, sub) for block in blocks for line in _logical(block))
    return PRELUDE + body + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 (http on loopback)
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def _login(base: str, username: str) -> int:
    """POST the login form as a browser would; the status (303 when logged in)."""
    import http.cookiejar

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    with opener.open(base + "/login", timeout=5) as r:
        m = _CSRF.search(r.read().decode())
    assert m is not None
    data = urllib.parse.urlencode(
        {"csrf": m.group(1), "username": username, "password": PASSWORD}).encode()
    try:
        with opener.open(base + "/login", data=data, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    """A throwaway server whose superuser is `postgres`, as on a packaged PostgreSQL, and
    where every other role must give its password (so the README's password route is used)."""
    root = Path(tempfile.mkdtemp(prefix="pn-pg-", dir="/tmp"))
    os.chmod(root, 0o755)  # noqa: S103 (the postgres user must reach the socket)
    pg = ThrowawayPostgres(root, user="postgres")
    try:
        pg.start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    try:
        (pg.data_dir / "pg_hba.conf").write_text(
            "local all postgres trust\nlocal all all scram-sha-256\n")
        pg._run([_binary("pg_ctl"), "-D", str(pg.data_dir), "reload"])
        yield pg
    finally:
        pg.stop()


def test_the_section_has_the_steps_a_newcomer_needs() -> None:
    text = "\n".join(section_blocks((ROOT / "README.md").read_text()))
    for needed in ("createuser --pwprompt", "createdb -O", "mkdir -p", "hub user add",
                   "node token create", "--passphrase-per-key", "peernet node activation"):
        assert needed in text, needed
    assert not re.search(r"postgresql://[^@\s]*:[^@\s]*@", text), "a password in a URL"


def test_adapt_changes_only_what_the_table_says() -> None:
    sub = {"socket": "/s", "etc": "/E", "var": "/V", "hub_url": "http://127.0.0.1:1",
           "node_url": "http://127.0.0.1:2", "hub_port": "1", "node_port": "2", "logs": "/L"}
    assert _adapt("sudo -u postgres createdb -O pn hub", sub) == "createdb -O pn hub"
    assert (_adapt("x --db-url postgresql://peernet@db.state.example/hub --port 8090", sub)
            == "x --db-url postgresql://peernet@/hub?host=/s --port 1")
    assert _adapt("export PEERNET_PASSPHRASE=...   # c", sub).startswith(
        "export PEERNET_PASSPHRASE='node key passphrase'")
    with pytest.raises(AssertionError, match="SECRETS"):
        _adapt("export SOMETHING_NEW=...", sub)
    assert _adapt("peernet hub serve --config /etc/peernet/hub.toml", sub).splitlines() == [
        "peernet hub serve --config /E/hub.toml > /L/hub.log 2>&1 &",
        "wait_healthy http://127.0.0.1:1"]


@pytest.mark.slow  # about 20 `peernet` processes, each importing the whole stack
def test_readme_postgresql_steps_run_as_written(
    tmp_path: Path, postgres: ThrowawayPostgres
) -> None:
    hub_port, node_port = _free_port(), _free_port()
    work, logs = tmp_path / "work", tmp_path / "logs"
    work.mkdir()
    logs.mkdir()
    sub = {
        "socket": str(postgres.socket_dir), "etc": str(tmp_path / "etc"),
        "var": str(tmp_path / "var"), "hub_url": f"http://127.0.0.1:{hub_port}",
        "node_url": f"http://127.0.0.1:{node_port}", "hub_port": str(hub_port),
        "node_port": str(node_port), "logs": str(logs),
    }
    script = readme_script(sub)
    (tmp_path / "readme.sh").write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERNET_")}
    env.update({
        "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                 str(Path(_binary("createdb")).parent), env.get("PATH", "")]),
        "PGHOST": str(postgres.socket_dir), "PGUSER": "postgres", "HOME": str(tmp_path),
    })
    proc = subprocess.Popen(["bash", str(tmp_path / "readme.sh")], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=240)
        server_logs = "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}"
                              for p in sorted(logs.glob("*.log")))
        assert proc.returncode == 0, out[-6000:] + server_logs
        assert "Traceback" not in out, out[-6000:]
        # The roster was verified, the config holds no secret.
        assert "ok: version 1, 2 nodes, board 2-of-3" in out, out[-3000:]
        for toml in (tmp_path / "etc").glob("*.toml"):
            text = toml.read_text()
            assert not [v for v in SECRETS.values() if v in text], toml
        status, body = _get(f"{sub['hub_url']}/healthz")
        assert status == 200 and json.loads(body)["roster_version"] == 1
        assert _get(f"{sub['node_url']}/healthz")[0] == 200
        # The node fetches the board-signed roster from the hub on its worker's pass.
        deadline = time.monotonic() + 30
        status, body = _get(f"{sub['node_url']}/fed/v1/roster")
        while status != 200 and time.monotonic() < deadline:
            time.sleep(0.3)
            status, body = _get(f"{sub['node_url']}/fed/v1/roster")
        assert status == 200, body
        assert {n["node_id"] for n in json.loads(body)["roster"]["nodes"]} == {
            "state-hub", "metro-fire"}
        # The people the README adds can log in.
        assert _login(sub["hub_url"], "dana") == 303
        assert _login(sub["node_url"], "alex") == 303
        assert _login(sub["hub_url"], "mallory") != 303
        # The activation CLI ran with the README's token (no agency to ask in a one-node net).
        assert "(none)" in out
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
