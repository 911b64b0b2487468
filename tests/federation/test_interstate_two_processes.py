"""Two node (or hub) processes over one database and the interstate documents they store.

Every process refreshes the compact and the other networks' rosters on its own period
(`FederationService.refresh_interstate`). A process whose memory is behind the database (the
other process stored a version since) must take the stored version, not fail on the primary
key: before, a foreign roster another process had stored made `accept_document` raise an
integrity error in the second process on every refresh, so it never adopted that roster
until restarted (on both engines). Storing is serialised across processes as the roster's
is (`federation.roster_sync` module notes), so two processes accepting one compact version
at once both succeed and store it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.clock import FakeClock
from federation.compact_store import CompactStore
from federation.database import make_engine, migrate
from federation.errors import FedCode, FederationError
from federation.foreign_rosters import ForeignRosters
from federation.interstate_tables import compacts, foreign_rosters
from federation.store import alarms
from tests.interstate.compacts import NOW, TestNetwork, compact_value, next_value, sign_compact


@pytest.fixture
async def engines(db_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    one, two = make_engine(db_url), make_engine(db_url)
    await migrate(one, "node:migrations")
    yield one, two
    await one.dispose()
    await two.dispose()


async def _count(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as conn:
        q = select(func.count()).select_from(table)  # type: ignore[arg-type]
        return int((await conn.execute(q)).scalar_one())


async def test_a_foreign_roster_stored_by_the_other_process_is_adopted(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    one, two = engines
    tx, hi = TestNetwork.make("tx"), TestNetwork.make("hi")
    clock = FakeClock(NOW)
    c1, c2 = CompactStore(one, clock, tx.pin()), CompactStore(two, clock, tx.pin())
    v1 = sign_compact(compact_value([tx, hi]), [tx, hi])
    await c1.accept([v1])
    assert await c2.accept([v1]) == [v1]  # stored by the other: adopted, not stored twice
    f1, f2 = ForeignRosters(one, clock, c1.state), ForeignRosters(two, clock, c2.state)
    await f1.load()
    await f2.load()  # both started before hi's roster arrived

    hi_v1 = hi.roster()
    assert await f1.accept_document("hi", hi_v1.to_bytes(), "hub-hi") is True
    assert await f2.accept_document("hi", hi_v1.to_bytes(), "hub-hi") is True  # new here
    assert f2.version("hi") == 1
    assert await f2.accept_document("hi", hi_v1.to_bytes()) is False
    assert await _count(one, foreign_rosters) == 1 and await _count(one, compacts) == 1

    # A different document for the stored version, seen by the process that has not got
    # it in memory: a split view, alarmed, nothing stored.
    f3 = ForeignRosters(two, clock, c2.state)
    twin = hi.roster(now=NOW + 7)
    assert twin.sha256 != hi_v1.sha256
    with pytest.raises(FederationError) as err:
        await f3.accept_document("hi", twin.to_bytes(), "hub-hi")
    assert err.value.code == FedCode.SPLIT_VIEW
    assert await _count(one, foreign_rosters) == 1 and await _count(one, alarms) == 1
    assert not f3.has_roster("hi")


async def test_two_processes_accept_one_compact_version_at_once(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    one, two = engines
    tx, hi = TestNetwork.make("tx"), TestNetwork.make("hi")
    clock = FakeClock(NOW)
    c1, c2 = CompactStore(one, clock, tx.pin()), CompactStore(two, clock, tx.pin())
    v1 = sign_compact(compact_value([tx, hi]), [tx, hi])
    v2 = sign_compact(next_value(v1, [tx, hi]), [tx, hi])
    for _ in range(3):  # the race is not forced here; the lock makes every order safe
        got = await asyncio.gather(c1.accept([v1, v2]), c2.accept([v1, v2]),
                                   return_exceptions=True)
        assert not [g for g in got if isinstance(g, BaseException)], got
    assert await _count(one, compacts) == 2
    assert c1.state.version == c2.state.version == 2
