"""The served OpenAPI documents and clients generated from them, made once per session.

`served_documents` starts a real hub and node (make_network, SQLite, ephemeral ports) in a
loop of its own, reads `GET /api/v1/openapi.json` from both and closes them.
`generated_clients` runs openapi-python-client (the command an integrator runs) on each
document into a session temporary folder and puts the folder on `sys.path`, so the tests
import `peernet_node_client` and `peernet_hub_client` as an integrator's code would. The
generation is cached by the documents' hash in the venv (.peernet-openapi-clients), so a
second session with the same documents skips it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.federation.network import make_network

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv running the tests (openapi-python-client's)
GENERATOR = BIN / "openapi-python-client"
CACHE = BIN.parent / ".peernet-openapi-clients"
PACKAGES = {"node": "peernet_node_client", "hub": "peernet_hub_client"}


async def _fetch(tmp: Path) -> dict[str, dict[str, Any]]:
    net = await make_network(1, tmp_path=tmp)
    try:
        docs = {}
        async with aiohttp.ClientSession() as http:
            for name, url in (("node", net.nodes[0].url), ("hub", net.hub.url)):
                async with http.get(url + "/api/v1/openapi.json") as r:
                    assert r.status == 200
                    docs[name] = await r.json()
        return docs
    finally:
        await net.close()


@pytest.fixture(scope="session")
def served_documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return asyncio.run(_fetch(tmp_path_factory.mktemp("openapi-net")))


def generate(doc: dict[str, Any], package: str, out: Path) -> Path:
    """Generate a client package for `doc` under `out`; returns the package folder."""
    work = out / f"{package}-work"
    work.mkdir(parents=True, exist_ok=True)
    (work / "doc.json").write_text(json.dumps(doc))
    (work / "config.yaml").write_text(
        f"post_hooks: []\nproject_name_override: {package}\npackage_name_override: {package}\n")
    target = out / package
    subprocess.run(
        [str(GENERATOR), "generate", "--path", str(work / "doc.json"), "--config",
         str(work / "config.yaml"), "--meta", "none", "--output-path", str(target)],
        check=True, capture_output=True, timeout=120)
    return target


@pytest.fixture(scope="session")
def generated_clients(served_documents: dict[str, dict[str, Any]]) -> Iterator[Path]:
    blob = json.dumps(served_documents, sort_keys=True).encode()
    key = hashlib.sha256(blob + GENERATOR.read_bytes()).hexdigest()[:16]
    folder = CACHE / key
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        for name, package in PACKAGES.items():
            generate(served_documents[name], package, folder)
        (folder / ".complete").write_text("ok")
    sys.path.insert(0, str(folder))
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))
