"""Start the real OpenID provider (`tests/oidc_provider/provider.js`: panva/oidc-provider on
Node 20) for a test: installs its npm packages on first use (`npm ci`, like scripts/test),
writes the users file, and stops the process afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent.parent / "oidc_provider"
CLIENT_SECRET = "peernet-test-client-secret-0123456789"
PASSWORD = "agency pass 1234"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_installed() -> None:
    if (HERE / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("Node.js 20 and npm are needed for the OIDC tests (scripts/test installs "
                    "them)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                   capture_output=True, timeout=300)


@dataclass
class RealProvider:
    issuer: str
    users_file: Path

    def set_users(self, users: dict[str, Any]) -> None:
        self.users_file.write_text(json.dumps(users), encoding="utf-8")


def client(client_id: str, base: str) -> dict[str, Any]:
    return {"client_id": client_id, "client_secret": CLIENT_SECRET,
            "redirect_uris": [base + "/login/oidc/callback"],
            "post_logout_redirect_uris": [base + "/login"]}


@contextlib.asynccontextmanager
async def real_provider(tmp: Path, clients: list[dict[str, Any]],
                        users: dict[str, Any]) -> AsyncIterator[RealProvider]:
    ensure_installed()
    users_file = tmp / "provider-users.json"
    users_file.write_text(json.dumps(users), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        "node", str(HERE / "provider.js"), cwd=HERE,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "CLIENTS": json.dumps(clients),
             "USERS_FILE": str(users_file)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith("ready "), f"provider did not start: {line!r}"
        yield RealProvider(line.split()[1], users_file)
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
