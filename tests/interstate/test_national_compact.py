"""National figures with the peers the compact lists (`hub.national.feature.CompactPeers`
over `federation.compact_state.CompactState`): the hub finds its own network by its hub id,
fetches the other member's signed statistics and verifies them with the hub keys the compact
names, and answers that member's signed request with the same keys; a hub the compact does
not list is refused. SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import aiohttp
import pytest
from nacl.signing import SigningKey

from federation.clock import FakeClock
from federation.compact_acceptance import CompactPin
from federation.compact_state import CompactState
from federation.roster_acceptance import BoardPin
from hub.appkeys import FEDERATION
from peernet.throwaway_pg import create_database, drop_database
from protocol.compact import build_signed_compact
from protocol.encoding import b64u
from protocol.request_auth import sign_request
from tests.interstate.national_hubs import OPERATOR_TOKEN, StateHub, seed_releases, start_state
from tests.interstate.test_national import SEEDED

Q = f"month_from={SEEDED[0]}&month_to={SEEDED[-1]}"
OP = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def member(h: StateHub) -> dict[str, object]:
    return {"network_id": h.network_id, "name": f"{h.network_id.upper()} network",
            "board": {"keys": [b64u(bytes(SigningKey.generate().verify_key))], "threshold": 1},
            "hub": {"hub_id": h.hub_id, "endpoint": h.url,
                    "keys": [{"kid": h.keys.key_id, "sign": b64u(h.keys.verify_key_bytes),
                              "enc": b64u(h.keys.enc_public_bytes)}]}}


async def test_compact_members_are_the_peers(db_url: str, tmp_path: Path,
                                             request: pytest.FixtureRequest) -> None:
    clock = FakeClock()
    admin = request.getfixturevalue("pg_admin_url") if db_url.startswith("postgres") else None
    names: list[str] = []

    async def new_db(name: str) -> str:
        if admin is None:
            return f"sqlite:///{tmp_path / (name + '.db')}"
        names.append("t_" + uuid.uuid4().hex[:16])
        return await create_database(admin, names[-1])

    hubs: list[StateHub] = []
    try:
        for nid in ("tx", "hi"):
            (tmp_path / nid).mkdir()
            hubs.append(await start_state(nid, tmp_path / nid, await new_db(nid), clock,
                                          static_peers=(nid == "hi")))
        tx, hi = hubs
        hi.peers.peers = [tx.as_peer(), hi.as_peer()]
        await seed_releases(tx, SEEDED, seed=1)
        await seed_releases(hi, SEEDED, seed=2)
        compact = build_signed_compact({
            "v": 1, "compact_id": "national-test", "version": 1, "prev_sha256": None,
            "issued_ts": clock.now_ms(), "expires_ts": clock.now_ms() + 86_400_000,
            "networks": [member(tx), member(hi)]})
        state = CompactState(clock, CompactPin("tx", BoardPin(frozenset(), 1)))
        state.load([compact])
        tx.app[FEDERATION].compact = state  # type: ignore[attr-defined]

        async with aiohttp.ClientSession() as http:
            async with http.post(f"{tx.url}/api/v1/national/refresh?{Q}", headers=OP) as r:
                out = await r.json()
            assert out["peers"] == [{"network_id": "hi", "status": "stored", "code": None,
                                     "months_stored": 3}]
            async with http.get(f"{tx.url}/api/v1/national?{Q}", headers=OP) as r:
                nat = await r.json()
            assert nat["own_network"] == "tx" and nat["networks"] == ["hi", "tx"]
            assert all(m["states_reporting"] == ["hi", "tx"] for m in nat["months"])
            # hi asks tx: tx checks hi's request against the compact's keys for hub-hi
            async with http.post(f"{hi.url}/api/v1/national/refresh?{Q}", headers=OP) as r:
                back = await r.json()
            assert back["peers"][0]["status"] == "stored"
            # a hub the compact does not list
            auth = sign_request(signing_key=SigningKey.generate(), key_version=1, method="GET",
                                path="/fed/v1/state-statistics", origin="hub-nv",
                                destination="hub-tx", ts=clock.now_ms(), body=b"")
            async with http.get(f"{tx.url}/fed/v1/state-statistics?from={SEEDED[0]}"
                                f"&to={SEEDED[-1]}", headers={"Authorization": auth}) as r:
                assert (r.status, (await r.json())["error"]["code"]) == (403, "unknown_sender")
    finally:
        for h in hubs:
            await h.stop()
        if admin is not None:
            for name in names:
                await drop_database(admin, name)
