"""A write the node cannot start because another process holds SQLite's write lock past the
bounded wait answers 503 `busy` (JSON error shape, Retry-After), stores nothing, and the
next write after the lock is released succeeds (issue 22). Before: `DatabaseBusy` is a
`FederationError`, which the node's error middleware re-raised, so the answer was a bare
500. SQLite only: a property of the embedded engine's locking (PostgreSQL has row locks)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from tests.node.conftest import PASSWORD, MakeNode

# Another process (a purge from cron, say) holding the write lock until argv[3] exists.
_FOREIGN_LOCK = """
import pathlib, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=20, isolation_level=None)
c.execute("BEGIN IMMEDIATE")
pathlib.Path(sys.argv[2]).write_text("1")
deadline = time.monotonic() + 30
while not pathlib.Path(sys.argv[3]).exists() and time.monotonic() < deadline:
    time.sleep(0.02)
c.execute("ROLLBACK")
"""


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


async def test_a_write_held_off_by_another_process_answers_503_busy(
    make_node: MakeNode, sqlite_url: str, tmp_path: Path
) -> None:
    node = await make_node()
    node.ctx.db.busy_wait_s = 0.3
    users_before = await node.count("users")
    audit_before = await node.count("audit_log")
    locked, release = tmp_path / "locked", tmp_path / "release"
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _FOREIGN_LOCK, sqlite_url.removeprefix("sqlite:///"),
        str(locked), str(release))
    try:
        deadline = time.monotonic() + 20
        while not locked.exists():
            assert time.monotonic() < deadline, "the other process never took the lock"
            await asyncio.sleep(0.02)
        body = {"username": "newbie", "password": PASSWORD, "role": "peer_supporter",
                "team": "main"}
        r = await node.client.post("/api/v1/users", json=body, headers=node.auth("admin"))
        assert r.status == 503, await r.text()
        assert r.headers["Retry-After"] == "1"
        err = await r.json()
        assert err["error"]["code"] == "busy" and err["error"]["field"] is None
        assert "busy" in err["error"]["message"]
    finally:
        release.write_text("1")
        assert await other.wait() == 0
    assert await node.count("users") == users_before  # nothing stored
    assert await node.count("audit_log") == audit_before
    status, out = await node.post("admin", "/api/v1/users", body)  # the lock is free again
    assert status == 201, out
    assert await node.count("users") == users_before + 1
