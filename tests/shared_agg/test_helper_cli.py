"""`peernet helper init` then `peernet helper serve` as real child processes on SQLite and
PostgreSQL: the served helper migrates its database and answers /healthz; its status route
refuses a caller without the operator token (`unauthenticated`)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from federation.board import BOARD_FORMAT
from tests.federation.boards import TestBoard

PEERNET = str(Path(sys.executable).with_name("peernet"))
PHRASE = "a long helper passphrase"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback http)
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310 (loopback)
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_helper_init_and_serve(tmp_path: Path, db_url: str) -> None:
    board = tmp_path / "board.json"
    b = TestBoard.make(3, 2)
    board.write_text(json.dumps({"format": BOARD_FORMAT, "keys": b.board().keys,
                                 "threshold": 2}), encoding="utf-8")
    port = _port()
    cfg = tmp_path / "helper.toml"
    env = {**os.environ, "PEERNET_HELPER_PASSPHRASE": PHRASE,
           "PEERNET_HELPER_OPERATOR_TOKEN": "helper-op-token"}
    init = subprocess.run(  # noqa: S603
        [PEERNET, "helper", "init", "--config", str(cfg), "--helper-id", "state-helper",
         "--name", "State helper", "--data-dir", str(tmp_path / "data"), "--db-url", db_url,
         "--port", str(port), "--public-url", f"http://127.0.0.1:{port}",
         "--hub-url", "http://127.0.0.1:9", "--board", str(board)],
        env=env, capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    assert PHRASE not in cfg.read_text("utf-8")
    proc = subprocess.Popen(  # noqa: S603
        [PEERNET, "helper", "serve", "--config", str(cfg)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, doc = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert status == 200 and doc["ok"] is True
        status, doc = _get(f"http://127.0.0.1:{port}/api/v1/status")
        assert status == 401 and doc["error"]["code"] == "unauthenticated"  # type: ignore[index]
        status, doc = _get(f"http://127.0.0.1:{port}/api/v1/status", "helper-op-token")
        assert status == 200 and doc["shares"] == {}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
