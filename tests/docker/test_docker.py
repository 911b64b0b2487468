"""docker/: what can be checked without a Docker engine.

- the compose file parses, has PostgreSQL, a hub, three agency nodes and a one-shot setup,
  and every service has a health check;
- the Dockerfile is multi-stage and runs as a non-root user;
- every `peernet` command and option named in compose.yaml, the Dockerfile, the entrypoint
  and the README's PostgreSQL section exists in the click tree;
- the entrypoint names the same `peernet` commands as the README section;
- the entrypoint's sequence, run for real against PostgreSQL, brings up a hub and a node
  that answer their health endpoints (and the node holds the board-signed roster).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml

from peernet.cli import main
from peernet.throwaway_pg import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"


def _compose() -> dict[str, object]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_parses_and_every_service_has_a_healthcheck() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    for name, svc in services.items():
        assert "healthcheck" in svc, name
        assert svc["healthcheck"]["test"], name
    assert services["postgres"]["image"].startswith("postgres")
    assert services["hub"]["command"] == ["hub"]
    assert services["setup"]["command"] == ["setup"]
    assert services["setup"]["restart"] == "no"
    nodes = [n for n, s in services.items() if s.get("command", [None])[0] == "node"]
    assert len(nodes) >= 3
    # Servers start only after the one-shot setup completed.
    assert services["hub"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    for n in nodes:
        assert services[n]["depends_on"]["hub"]["condition"] == "service_healthy"
    # Every node the setup creates is served, and every served node is set up.
    created = {spec.split(":")[0] for spec in services["setup"]["environment"]["PEERNET_NODES"]
               .split()}
    assert created == {services[n]["command"][1] for n in nodes}


def test_postgres_init_creates_every_database_compose_names() -> None:
    services = _compose()["services"]
    sql = (DOCKER / "postgres-init.sql").read_text()
    made = set(re.findall(r"CREATE DATABASE (\w+);", sql))
    env = services["setup"]["environment"]
    assert env["PEERNET_HUB_DB_URL"].rsplit("/", 1)[1] in made
    for spec in env["PEERNET_NODES"].split():
        assert spec.split(":")[0].replace("-", "_") in made


def test_dockerfile_is_multi_stage_and_not_root() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM .+ AS \w+", text, re.M)) >= 2
    assert "COPY --from=build" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and not users[-1].startswith(("root", "0"))
    assert "HEALTHCHECK" in text
    assert "docker/entrypoint.sh" in text


# --- commands and options named in the files exist in the CLI --------------------------


def _logical_lines(text: str) -> list[str]:
    return re.sub(r"\\\n\s*", " ", text).splitlines()


def _invocations(text: str, starters: tuple[str, ...]) -> list[list[str]]:
    """Argument lists after each starter word (`peernet`, `pn`, ...), comments dropped."""
    out = []
    for line in _logical_lines(text):
        line = line.split(" #", 1)[0]
        if line.lstrip().startswith("#"):
            continue
        try:
            words = shlex.split(line, posix=True)
        except ValueError:
            words = line.split()
        for i, w in enumerate(words):
            if w in starters and i + 1 < len(words) and re.match(r"^[a-z-]+$", words[i + 1]):
                out.append(words[i + 1:])
    return out


def _resolve(args: list[str]) -> tuple[list[str], click.Command, list[str]]:
    """The command path the words name, its click command, and the options given."""
    cmd: click.Command = main
    path: list[str] = []
    rest = list(args)
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        sub = cmd.commands.get(rest[0])
        assert sub is not None, f"peernet {' '.join(path + [rest[0]])} does not exist"
        path.append(rest.pop(0))
        cmd = sub
    options = [a.split("=", 1)[0] for a in rest if re.match(r"^--[a-z][a-z-]*", a)]
    return path, cmd, options


def _check(args: list[str]) -> str:
    path, cmd, options = _resolve(args)
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    for opt in options:
        assert opt in known, f"peernet {' '.join(path)} has no option {opt}"
    return " ".join(path)


def _readme_pg_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Running a real node and hub on PostgreSQL")
    end = text.index("\n## ", start + 5)
    return text[start:end]


def _code_blocks(md: str) -> str:
    return "\n".join(re.findall(r"```(?:sh)?\n(.*?)```", md, re.S))


def _entrypoint_commands() -> set[str]:
    found = _invocations(ENTRYPOINT.read_text(), ("pn",))
    return {_check(a) for a in found}


def _readme_commands() -> set[str]:
    found = _invocations(_code_blocks(_readme_pg_section()), ("peernet",))
    return {_check(a) for a in found}


def test_entrypoint_commands_and_options_exist() -> None:
    cmds = _entrypoint_commands()
    assert {"board init", "hub init", "node init", "node public-info", "board add-node",
            "board sign", "board combine", "roster verify", "hub install-roster"} <= cmds
    text = ENTRYPOINT.read_text()
    assert "$PEERNET hub serve" in text and "$PEERNET node serve" in text
    _check(["hub", "serve", "--config"])
    _check(["node", "serve", "--config"])


def test_readme_postgresql_commands_and_options_exist() -> None:
    cmds = _readme_commands()
    assert "hub serve" in cmds and "node serve" in cmds
    assert "postgresql://" in _readme_pg_section()


def test_entrypoint_runs_the_same_commands_as_the_readme() -> None:
    served = {"hub serve", "node serve"}
    # Day-two administration and use, not part of the setup.
    extra_in_readme = {"node user add", "hub user add", "node activation targets",
                       "node activation request"}
    assert _entrypoint_commands() | served == _readme_commands() - extra_in_readme


def test_dockerfile_and_compose_name_only_real_commands() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert cmd[0] == "peernet"
    _check(cmd[1:])
    entry_cases = set(re.findall(r"^  ([a-z]+)\)$", ENTRYPOINT.read_text(), re.M))
    for name, svc in _compose()["services"].items():
        command = svc.get("command")
        if command is None:
            continue
        assert command[0] in entry_cases, name
        if command[0] == "peernet":
            _check(command[1:])


def test_a_misspelt_option_is_caught() -> None:
    with pytest.raises(AssertionError, match="no option --db-uri"):
        _check(["node", "init", "--db-uri", "x"])
    with pytest.raises(AssertionError, match="does not exist"):
        _check(["node", "publicinfo"])


# --- the entrypoint for real, against PostgreSQL ---------------------------------------


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


@pytest.fixture
def pg_databases(pg_admin_url: str) -> Iterator[tuple[str, str, str]]:
    """A hub database and a node database (named as the entrypoint names them)."""
    suffix = uuid.uuid4().hex[:8]
    hub_db, node_db = f"hub_{suffix}", f"fire_{suffix}"
    hub_url = asyncio.run(create_database(pg_admin_url, hub_db))
    asyncio.run(create_database(pg_admin_url, node_db))
    template = hub_url.replace(f"/{hub_db}", "/{db}", 1)
    try:
        yield hub_url, template, f"fire-{suffix}"
    finally:
        for name in (hub_db, node_db):
            asyncio.run(drop_database(pg_admin_url, name))


@pytest.mark.slow  # about 15 `peernet` processes, each importing the whole stack
def test_entrypoint_brings_up_a_hub_and_a_node_on_postgresql(
    tmp_path: Path, pg_databases: tuple[str, str, str]
) -> None:
    hub_url, template, node_id = pg_databases
    wrapper = tmp_path / "peernet"  # `peernet` as an installed console script would run
    wrapper.write_text(
        f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} "
        "-c 'from peernet.cli import main; main()' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    hub_port, node_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "PEERNET_BIN": str(wrapper),
        "PEERNET_DATA": str(tmp_path / "data"),
        "PEERNET_NODES": f"{node_id}:fire:north",
        "PEERNET_HUB_DB_URL": hub_url,
        "PEERNET_NODE_DB_TEMPLATE": template,
        "PEERNET_HUB_PUBLIC_URL": f"http://127.0.0.1:{hub_port}",
        "PEERNET_NODE_URL_TEMPLATE": f"http://127.0.0.1:{node_port}",
        "PEERNET_LISTEN_HOST": "127.0.0.1",
        "PEERNET_HUB_PORT": str(hub_port),
        "PEERNET_NODE_PORT": str(node_port),
        "PEERNET_BOARD_PASSPHRASE": "board passphrase for tests",
        "PEERNET_HUB_PASSPHRASE": "hub passphrase for tests",
        "PEERNET_PASSPHRASE": "node passphrase for tests",
        "PEERNET_ADMIN_PASSWORD": "admin password 1",
        "PEERNET_HUB_OPERATOR_TOKEN": "operator token for tests",
    }
    setup = subprocess.run(["sh", str(ENTRYPOINT), "setup"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "accepted roster versions: [1]" in setup.stdout
    assert "Traceback" not in setup.stderr
    # Setup is one-shot: a second run changes nothing.
    again = subprocess.run(["sh", str(ENTRYPOINT), "setup"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 0 and "already set up" in again.stdout

    procs = [
        subprocess.Popen(["sh", str(ENTRYPOINT), "hub"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
        subprocess.Popen(["sh", str(ENTRYPOINT), "node", node_id], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
    ]
    try:
        deadline = time.monotonic() + 60
        hub_ok = node_ok = False
        while time.monotonic() < deadline and not (hub_ok and node_ok):
            for p in procs:
                assert p.poll() is None, p.stderr.read().decode() if p.stderr else ""
            status, body = _get(f"http://127.0.0.1:{hub_port}/healthz")
            hub_ok = status == 200 and json.loads(body)["roster_version"] == 1
            node_ok = _get(f"http://127.0.0.1:{node_port}/healthz")[0] == 200
            time.sleep(0.3)
        assert hub_ok and node_ok
        # The node fetches the board-signed roster from the hub (on its first worker pass,
        # which may follow its first healthy answer) and serves it onwards.
        status, body = _get(f"http://127.0.0.1:{node_port}/fed/v1/roster")
        while status != 200 and time.monotonic() < deadline + 30:
            time.sleep(0.3)
            status, body = _get(f"http://127.0.0.1:{node_port}/fed/v1/roster")
        assert status == 200, body
        members = {n["node_id"] for n in json.loads(body)["roster"]["nodes"]}
        assert members == {"state-hub", node_id}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
