"""Fetching the compact and another network's roster from a real member hub (aiohttp server
on an ephemeral port, both databases); a hub's per-hop keys resolve through the compact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.clock import FakeClock
from federation.compact_store import CompactStore, compact_routes
from federation.database import make_engine, migrate
from federation.errors import FedCode, FederationError
from federation.foreign_rosters import ForeignRosters
from federation.interstate_fetch import fetch_compact, fetch_foreign_roster
from federation.roster_sync import RosterStore, roster_routes
from protocol.compact import SignedCompact
from protocol.errors import Code, ProtocolError
from protocol.request_auth import sign_request, verify_request
from tests.interstate.compacts import NOW, TestNetwork, compact_value, sign_compact


@pytest.fixture
async def mine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    await migrate(eng, "hub:migrations")
    yield eng
    await eng.dispose()


def _chain(tx: TestNetwork, hi: TestNetwork, endpoint: str, n: int) -> list[SignedCompact]:
    out: list[SignedCompact] = []
    for v in range(1, n + 1):
        value: dict[str, Any] = compact_value([tx, hi], version=v, now=NOW + v,
                                              prev=out[-1] if out else None)
        for m in value["networks"]:
            if m["network_id"] == "hi":
                m["hub"]["endpoint"] = endpoint
        out.append(sign_compact(value, [tx, hi]))
    return out


async def test_fetch_compact_and_foreign_roster_from_a_real_hub(
    mine: AsyncEngine, aiohttp_server: Any, tmp_path: Any,
) -> None:
    tx, hi = TestNetwork.make("tx"), TestNetwork.make("hi")
    clock = FakeClock(NOW + 100)
    peer_engine = make_engine(f"sqlite:///{tmp_path}/hub-hi.db")
    await migrate(peer_engine, "hub:migrations")
    try:
        peer = CompactStore(peer_engine, clock, hi.pin())
        peer_rosters = RosterStore(peer_engine, clock, hi.board_pin())
        app = web.Application()
        app.add_routes(compact_routes(peer) + roster_routes(peer_rosters))

        async def moved(_r: web.Request) -> web.StreamResponse:
            raise web.HTTPFound("/fed/v1/compact")

        app.router.add_get("/moved/fed/v1/compact", moved)
        server = await aiohttp_server(app)
        base = str(server.make_url("")).rstrip("/")
        chain = _chain(tx, hi, base, 3)
        await peer.accept(chain)
        await peer_rosters.accept([hi.roster(now=NOW)])

        store = CompactStore(mine, clock, tx.pin())
        async with aiohttp.ClientSession() as http:
            await store.accept([chain[0]])
            got = await fetch_compact(http, base, store, "hub-hi")  # walks 2, then 3
            assert [s.version for s in got] == [2, 3] and store.state.version == 3
            assert await fetch_compact(http, base, store) == []
            with pytest.raises(FederationError) as err:
                await fetch_compact(http, base + "/moved", store)
            assert err.value.code == FedCode.PEER_ERROR  # a redirect is never followed

            foreign = ForeignRosters(mine, clock, store.state)
            assert await fetch_foreign_roster(http, foreign, "hi") is True
            assert await fetch_foreign_roster(http, foreign, "hi") is False
            assert foreign.node("hi", "agency-a").node_id == "agency-a"
            with pytest.raises(ProtocolError) as perr:
                await fetch_foreign_roster(http, foreign, "ny")
            assert perr.value.code is Code.UNKNOWN_NETWORK
    finally:
        await peer_engine.dispose()

    # per-hop request signatures of hi's hub resolve through the compact
    hub_key = hi.hub_keys
    header = sign_request(method="PUT", path="/fed/v1/send", body=b"{}", origin="hub-hi",
                          destination="hub-tx", key_version=hub_key.key_version,
                          signing_key=hub_key.signing_key, ts=NOW + 100)
    assert verify_request(header, method="PUT", path="/fed/v1/send", body=b"{}", me="hub-tx",
                          keys=store.state, now_ms=NOW + 100) == "hub-hi"
    with pytest.raises(ProtocolError) as perr:
        store.state.verify_key("hub-ny", hub_key.key_id, NOW)
    assert perr.value.code is Code.UNKNOWN_SENDER
    with pytest.raises(ProtocolError) as perr:
        store.state.verify_key("hub-hi", "ed25519:9", NOW)
    assert perr.value.code is Code.UNKNOWN_KEY
