"""One write path on SQLite (issue 22, item 2): no code writes outside `db.write()`.

A write outside it skips the in-process writer queue and `BEGIN IMMEDIATE`: its transaction
starts as a reader, upgrades at its first write (a read-then-write that is not atomic
against other processes) and waits for the lock inside SQLite. The detector below is a
SQLAlchemy `before_cursor_execute` hook on every engine: a data or schema change issued on a
connection that `db.write()` did not open (no `peernet_write` option) is recorded. It runs
over a real hub and two real nodes: an activation across them, encounters and each node's
monthly release delivered to the hub. Before this change the hub's `receive_release` and a
`RosterStore` without the server's writer used `engine.begin()`: the checks below on both
fail on that code. The encounter fast writer and the prepared shortcut write on the raw
sqlite3 connection under the writer queue and `BEGIN IMMEDIATE`; they never pass this hook.

SQLite only: PostgreSQL has no database-wide write lock, so there is nothing to bypass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from federation.clock import FakeClock
from federation.database import make_engine
from federation.roster_sync import RosterStore
from federation.store import METADATA, rosters
from hub.stats.aggregates import AggregateRelease
from node.activation import requester as requesting
from node.core.vocabulary import Role
from tests.activations.helpers import request_in
from tests.activations.netutil import actx, add_user, offer
from tests.federation.boards import TestBoard
from tests.federation.network import Network
from tests.privacy.test_e2e_release import _release, _seed

NetworkFactory = Callable[..., Awaitable[Network]]
NOW = 1_780_000_000_000
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


class Outside:
    """Write statements seen on SQLite connections `db.write()` did not open."""

    def __init__(self) -> None:
        self.on = False
        self.seen: list[str] = []

    def hook(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not self.on or conn.dialect.name != "sqlite":
            return
        if conn.get_execution_options().get("peernet_write"):
            return
        words = statement.lstrip().split(None, 1)
        if words and words[0].upper() in _WRITES:
            self.seen.append(" ".join(statement.split())[:80])


@pytest.fixture
def outside() -> Iterator[Outside]:
    rec = Outside()
    event.listen(Engine, "before_cursor_execute", rec.hook)
    try:
        yield rec
    finally:
        event.remove(Engine, "before_cursor_execute", rec.hook)


async def test_activation_and_release_write_only_through_the_write_path(
    network: NetworkFactory, outside: Outside
) -> None:
    net = await network(3, db="sqlite")
    outside.on = True
    a, b, c = (net.node(f"agency-{i}") for i in (1, 2, 3))
    coord, _ = await add_user(a, "coord", Role.COORDINATOR)
    async with a.db.write() as conn:
        act = await requesting.create_request(
            conn, actx(a), request_in(["agency-2", "agency-3"]), user_id=coord)
    await net.settle()
    await offer(b, act.activation_id, "agency-1", {"fire": 2})
    await offer(c, act.activation_id, "agency-1", {"ems": 1})
    await net.settle()
    await _seed(a, 6)
    await _seed(b, 4)
    assert len(await _release(a, net)) == 1
    assert len(await _release(b, net)) == 1
    await net.settle()
    async with net.hub.db.read() as conn:
        n = (await conn.execute(sa.select(sa.func.count()).select_from(AggregateRelease))
             ).scalar_one()
    assert n == 2  # the flow really wrote on the hub
    assert outside.seen == []

    # The detector catches a write outside the path (a deliberate violation).
    async with a.db.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE audit_head SET hash = hash WHERE id = 1"))
    assert outside.seen == ["UPDATE audit_head SET hash = hash WHERE id = 1"]


async def test_a_roster_store_without_the_servers_writer_still_uses_the_write_path(
    tmp_path: Path, outside: Outside
) -> None:
    """Tools and tests make a `RosterStore` on a bare engine; its writes go through a
    `Database` of its own (before: `engine.begin()`, caught here)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    b = TestBoard.make(3, 2)
    store = RosterStore(engine, FakeClock(NOW), b.pin())
    outside.on = True
    v1 = b.sign(b.roster(now=NOW))
    assert [s.version for s in await store.accept([v1, b.sign(b.next(v1, now=NOW))])] == [1, 2]
    assert outside.seen == []
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(rosters))
                ).scalar_one() == 2
    await engine.dispose()
