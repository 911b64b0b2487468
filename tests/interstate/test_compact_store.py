"""Compacts and foreign rosters stored on both databases (migrated by the hub's and the
node's real Alembic histories); every refusal has its stable code and stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.reliability_report import record
from federation.clock import FakeClock
from federation.compact_store import CompactStore, compact_routes
from federation.database import make_engine, migrate
from federation.errors import FedCode, FederationError
from federation.foreign_rosters import ForeignRosters
from federation.interstate_tables import compacts, foreign_rosters
from federation.store import alarms
from protocol.errors import Code, ProtocolError
from tests.interstate.compacts import NOW, TestNetwork, compact_value, next_value, sign_compact


@pytest.fixture(params=["hub", "node"])
async def engine(db_url: str, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    await migrate(eng, f"{request.param}:migrations")
    yield eng
    await eng.dispose()


async def _count(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as conn:
        q = select(func.count()).select_from(table)  # type: ignore[arg-type]
        return int((await conn.execute(q)).scalar_one())


async def test_compact_stored_reloaded_and_refusals_store_nothing(engine: AsyncEngine) -> None:
    tx, hi = TestNetwork.make("tx"), TestNetwork.make("hi")
    clock = FakeClock(NOW)
    store = CompactStore(engine, clock, tx.pin())
    v1 = sign_compact(compact_value([tx, hi]), [tx, hi])
    assert await store.accept_document(v1.to_bytes(), "hub-hi") == [v1]
    again = CompactStore(engine, clock, tx.pin())
    await again.load()
    assert again.state.version == 1 and again.state.current == v1.compact

    short = sign_compact(next_value(v1, [tx, hi]), [tx], only={"hi": hi.board.keys[:1]})
    v2 = sign_compact(next_value(v1, [tx, hi]), [tx, hi])
    twin = sign_compact(next_value(v1, [tx, hi], now=NOW + 7), [tx, hi])
    cases = [
        (b"{not json", FedCode.BAD_COMPACT),
        (short.to_bytes(), FedCode.COMPACT_THRESHOLD),
        (sign_compact(next_value(v1, [tx, hi], prev_sha256=v2.sha256), [tx, hi]).to_bytes(),
         FedCode.COMPACT_CHAIN),
        (sign_compact(next_value(v1, [tx, hi], expires_ts=NOW - 1, issued_ts=NOW - 2),
                      [tx, hi]).to_bytes(), FedCode.COMPACT_EXPIRED),
    ]
    for data, code in cases:
        with pytest.raises(FederationError) as err:
            await store.accept_document(data, "hub-hi")
        assert err.value.code == code
        assert await _count(engine, compacts) == 1 and store.state.version == 1
    assert await store.accept([v2]) == [v2]
    assert await store.accept([v1]) == []  # the held version again: nothing new
    with pytest.raises(FederationError) as err:
        await store.accept([twin], "hub-hi")
    assert err.value.code == FedCode.SPLIT_VIEW
    assert await _count(engine, compacts) == 2 and await _count(engine, alarms) == 1
    assert await store.document() == v2.to_bytes()
    record("security-compact-acceptance", area="security",
           case="a compact is accepted only when every member board and our own signed it, "
                "chained and unexpired",
           how="real hub and node migrations on SQLite and PostgreSQL; unparsable, signed by "
               "too few of one board, wrong prev_sha256, expired (frozen), and a second "
               "validly signed document for a held version",
           result="bad_compact, compact_threshold, compact_chain, compact_expired, split_view "
                  "(one alarm stored); fed_compact unchanged by every refusal")


async def test_compact_served_over_http(engine: AsyncEngine, aiohttp_client: object) -> None:
    tx, hi = TestNetwork.make("tx"), TestNetwork.make("hi")
    store = CompactStore(engine, FakeClock(NOW), tx.pin())
    app = web.Application()
    app.add_routes(compact_routes(store))
    client: TestClient = await aiohttp_client(app)  # type: ignore[operator]
    assert (await client.get("/fed/v1/compact")).status == 503
    v1 = sign_compact(compact_value([tx, hi]), [tx, hi])
    await store.accept([v1])
    resp = await client.get("/fed/v1/compact")
    assert resp.status == 200 and await resp.read() == v1.to_bytes()
    assert (await client.get("/fed/v1/compact/1")).status == 200
    assert (await client.get("/fed/v1/compact/2")).status == 404
    assert (await client.get("/fed/v1/compact/x")).status == 400


async def test_foreign_rosters_verified_against_the_compact(engine: AsyncEngine) -> None:
    tx, hi, ca = TestNetwork.make("tx"), TestNetwork.make("hi"), TestNetwork.make("ca")
    clock = FakeClock(NOW)
    store = CompactStore(engine, clock, tx.pin())
    v1 = sign_compact(compact_value([tx, hi, ca]), [tx, hi, ca])
    await store.accept([v1])
    foreign = ForeignRosters(engine, clock, store.state)

    async def refused(code: str, network_id: str, data: bytes) -> None:
        before = await _count(engine, foreign_rosters)
        with pytest.raises((ProtocolError, FederationError)) as err:
            await foreign.accept_document(network_id, data)
        assert str(err.value.code) == code
        assert await _count(engine, foreign_rosters) == before

    # hi's roster signed by a board the compact does not list for hi
    impostor = TestNetwork.make("hi")
    await refused(Code.FOREIGN_ROSTER_INVALID, "hi", impostor.roster().to_bytes())
    await refused(Code.FOREIGN_ROSTER_INVALID, "hi", b"[]")
    await refused(Code.UNKNOWN_NETWORK, "ny", hi.roster().to_bytes())
    await refused(Code.FOREIGN_ROSTER_INVALID, "tx", tx.roster().to_bytes())  # our own
    with pytest.raises(ProtocolError) as perr:
        foreign.verify_key("hi", "agency-a", hi.agencies["agency-a"].key_id, NOW)
    assert perr.value.code is Code.FOREIGN_ROSTER_INVALID  # none held yet

    hi_v1 = hi.roster()
    assert await foreign.accept_document("hi", hi_v1.to_bytes(), "hub-hi") is True
    assert await foreign.accept_document("hi", hi_v1.to_bytes()) is False
    key = foreign.verify_key("hi", "agency-a", hi.agencies["agency-a"].key_id, NOW)
    assert key == hi.agencies["agency-a"].verify_key_bytes
    foreign.check_roster("hi", 1, hi_v1.sha256)
    with pytest.raises(ProtocolError) as perr:
        foreign.check_roster("hi", 1, v1.sha256)
    assert perr.value.code is Code.ROSTER_MISMATCH
    with pytest.raises(ProtocolError) as perr:
        foreign.verify_key("hi", "nobody-here", "ed25519:1", NOW)
    assert perr.value.code is Code.UNKNOWN_SENDER
    await foreign.accept_document("ca", ca.roster().to_bytes())

    reloaded = ForeignRosters(engine, clock, store.state)
    await reloaded.load()
    assert reloaded.version("hi") == 1 and reloaded.has_roster("ca")

    # ca is removed from the compact: refused from that version on
    await store.accept([sign_compact(next_value(v1, [tx, hi]), [tx, hi])])
    with pytest.raises(ProtocolError) as perr:
        foreign.verify_key("ca", "agency-a", ca.agencies["agency-a"].key_id, NOW)
    assert perr.value.code is Code.NETWORK_NOT_IN_COMPACT
    await refused(Code.NETWORK_NOT_IN_COMPACT, "ca", ca.roster(now=NOW + 1).to_bytes())
