"""National figures through real hubs (issue 19 item 5): state hubs on ephemeral ports with
their own boards, keys, databases and signed releases; one fetches the others' signed state
statistics over `GET /fed/v1/state-statistics` and sums them. SQLite and PostgreSQL.

- the national sum equals the sum of the states' own figures (estimates and variances);
- a state that did not publish (hub down) and a month a state did not report are named
  missing; no budget is spent (every state's figures and stored releases unchanged);
- forged documents (a key the compact does not list for that hub, a tampered figure, a
  document of another network, a replayed old one) are refused with a stable code and
  nothing is stored;
- wrong caller refused: unsigned or non-member requests on the federation route, the
  analyst on the operator-only refresh, no session on the page and the API.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from bench.reliability_report import record
from federation.clock import FakeClock
from federation.keystore import NodeKeys
from hub.appkeys import DB
from hub.national.schedule import FIRST_MS, SCHEDULE
from hub.national.store import documents, months
from hub.stats.aggregates import AggregateRelease
from peernet.throwaway_pg import create_database, drop_database
from protocol.canonical import canonical_bytes, parse_json
from protocol.request_auth import sign_request
from protocol.state_stats import FIGURES
from tests.interstate.national_hubs import (
    MONTHS,
    OPERATOR_TOKEN,
    StateHub,
    add_analyst,
    link,
    seed_releases,
    start_state,
)

SEEDED = MONTHS[-3:]  # 2026-02 .. 2026-04
Q = f"month_from={SEEDED[0]}&month_to={SEEDED[-1]}"
OP = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}

MakeHubs = Callable[..., Awaitable[dict[str, StateHub]]]


@pytest.fixture
async def make_hubs(db_url: str, tmp_path: Path,
                    request: pytest.FixtureRequest) -> AsyncIterator[MakeHubs]:
    made: list[StateHub] = []
    pg: list[str] = []
    admin = request.getfixturevalue("pg_admin_url") if db_url.startswith("postgres") else None

    async def new_db(name: str) -> str:
        if admin is None:
            return f"sqlite:///{tmp_path / (name + '.db')}"
        dbname = "t_" + uuid.uuid4().hex[:16]
        pg.append(dbname)
        return await create_database(admin, dbname)

    async def factory(ids: list[str], clock: FakeClock) -> dict[str, StateHub]:
        out = {}
        for nid in ids:
            (tmp_path / nid).mkdir()
            hub = await start_state(nid, tmp_path / nid, await new_db(nid), clock)
            made.append(hub)
            out[nid] = hub
        link(list(out.values()))
        return out

    try:
        yield factory
    finally:
        for h in made:
            await h.stop()
        if admin is not None:
            for name in pg:
                await drop_database(admin, name)


async def get_json(url: str, headers: dict[str, str] | None = None,
                   method: str = "GET") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(method, url,
                                                            headers=headers) as r:
        return r.status, await r.json(content_type=None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def stored_counts(hub: StateHub) -> tuple[int, int]:
    async with hub.app[DB].read() as conn:
        d = (await conn.execute(select(func.count()).select_from(documents))).scalar_one()
        m = (await conn.execute(select(func.count()).select_from(months))).scalar_one()
    return int(d), int(m)


async def release_count(hub: StateHub) -> int:
    async with hub.app[DB].read() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(AggregateRelease))).scalar_one())


async def test_national_sum_equals_the_sum_of_states(make_hubs: MakeHubs) -> None:
    clock = FakeClock()
    hubs = await make_hubs(["tx", "hi", "ca"], clock)
    tx, hi, ca = hubs["tx"], hubs["hi"], hubs["ca"]
    await seed_releases(tx, SEEDED, seed=1)
    await seed_releases(hi, SEEDED, seed=2, skip=lambda n, m: m == SEEDED[1])  # hi: none in March
    await seed_releases(ca, SEEDED, seed=3)
    await ca.stop()  # ca's hub is down: it does not publish
    token = await add_analyst(tx, clock.now_ms())
    state_docs = {}
    for h in (tx, hi):
        status, state_docs[h.network_id] = await get_json(
            f"{h.url}/api/v1/stats?{Q}", OP)
        assert status == 200
    before = (await release_count(tx), state_docs["tx"])

    status, refreshed = await get_json(f"{tx.url}/api/v1/national/refresh?{Q}", OP, "POST")
    assert status == 200
    outcome = {p["network_id"]: p for p in refreshed["peers"]}
    assert outcome["hi"]["status"] == "stored" and outcome["hi"]["months_stored"] == 3
    assert outcome["ca"]["status"] == "unreachable" and outcome["ca"]["code"] == "peer_unreachable"

    status, nat = await get_json(f"{tx.url}/api/v1/national?{Q}", bearer(token))
    assert status == 200, nat
    assert nat["own_network"] == "tx" and nat["networks"] == ["ca", "hi", "tx"]
    for i, m in enumerate(nat["months"]):
        assert m["month"] == SEEDED[i]
        parts = [d["months"][i] for d in state_docs.values() if d["months"][i]["nodes_reporting"]]
        assert m["states_reporting"] == (["tx"] if i == 1 else ["hi", "tx"])
        assert m["states_missing"] == (["ca", "hi"] if i == 1 else ["ca"])
        assert m["nodes_reporting"] == sum(p["nodes_reporting"] for p in parts)
        for name in ("encounters", "referrals", "follow_ups_due"):
            est = sum(p[name]["estimate"] for p in parts)
            var = sum(p[name]["se"] ** 2 for p in parts)
            assert m[name]["estimate"] == pytest.approx(est, abs=1e-4)
            assert m[name]["se"] == pytest.approx(math.sqrt(var), rel=1e-6)
            lo, hi_ = m[name]["interval"]
            assert hi_ - lo == pytest.approx(2 * 1.959963984540054 * math.sqrt(var), rel=1e-6)
        for d, fig in m["by_discipline"].items():
            assert fig["estimate"] == pytest.approx(
                sum(p["by_discipline"][d]["estimate"] for p in parts), abs=1e-4)
    assert nat["total"]["encounters"]["estimate"] == pytest.approx(
        sum(d["total"]["encounters"]["estimate"] for d in state_docs.values()), abs=1e-3)
    # no budget spent, nothing of the state's own figures changed
    status, after_doc = await get_json(f"{tx.url}/api/v1/stats?{Q}", OP)
    assert (await release_count(tx), after_doc) == before
    assert await stored_counts(tx) == (1, 3)


async def test_forged_documents_are_refused_and_nothing_is_stored(
        make_hubs: MakeHubs, aiohttp_server: Any, db_url: str) -> None:
    clock = FakeClock()
    hubs = await make_hubs(["tx", "hi"], clock)
    tx, hi = hubs["tx"], hubs["hi"]
    await seed_releases(hi, SEEDED, seed=2)
    genuine = hi.as_peer()

    # a proxy in front of hi that edits one figure of the signed document
    async def tampered(request: web.Request) -> web.Response:
        async with aiohttp.ClientSession() as http, http.get(
                hi.url + request.path_qs,
                headers={"Authorization": request.headers["Authorization"]}) as r:
            signed = parse_json(await r.read())
        signed["state_statistics"]["months"][0]["estimate"][0] = "999999"
        return web.Response(body=canonical_bytes(signed), content_type="application/json")

    captured: list[bytes] = []

    async def replay(request: web.Request) -> web.Response:
        return web.Response(body=captured[0], content_type="application/json")

    proxy = web.Application()
    proxy.router.add_get("/fed/v1/state-statistics", tampered)
    proxy_server = await aiohttp_server(proxy)
    replayer = web.Application()
    replayer.router.add_get("/fed/v1/state-statistics", replay)
    replay_server = await aiohttp_server(replayer)

    other_key = NodeKeys.generate()
    cases = [
        # the compact lists another key for hi's hub under the same key id
        (genuine.__class__(genuine.network_id, genuine.hub_id, genuine.endpoint,
                           {hi.keys.key_id: other_key.verify_key_bytes}), "bad_signature"),
        # a key id the compact does not list
        (genuine.__class__(genuine.network_id, genuine.hub_id, genuine.endpoint,
                           {"ed25519:99": hi.keys.verify_key_bytes}), "unknown_key"),
        # hi's genuine document offered as another network's
        (genuine.__class__("nv", genuine.hub_id, genuine.endpoint,
                           dict(genuine.hub_sign_keys)), "sender_mismatch"),
    ]
    for peer, code in cases:
        tx.peers.peers = [tx.as_peer(), peer]
        status, out = await get_json(f"{tx.url}/api/v1/national/refresh?{Q}", OP, "POST")
        assert status == 200
        assert [(p["status"], p["code"]) for p in out["peers"]] == [("refused", code)], code
        assert await stored_counts(tx) == (0, 0)

    # a tampered figure behind the right keys
    tx.peers.peers = [tx.as_peer(), genuine.__class__(
        "hi", "hub-hi", str(proxy_server.make_url("/")), dict(genuine.hub_sign_keys))]
    status, out = await get_json(f"{tx.url}/api/v1/national/refresh?{Q}", OP, "POST")
    assert [(p["status"], p["code"]) for p in out["peers"]] == [("refused", "bad_signature")]
    assert await stored_counts(tx) == (0, 0)
    status, nat = await get_json(f"{tx.url}/api/v1/national?{Q}", OP)
    assert all(m["states_missing"] == ["hi", "tx"] for m in nat["months"])  # tx: no releases

    # a genuine document captured earlier and replayed later
    auth = sign_request(signing_key=tx.keys.signing_key, key_version=tx.keys.key_version,
                        method="GET", path="/fed/v1/state-statistics", origin="hub-tx",
                        destination="hub-hi", ts=clock.now_ms(), body=b"")
    async with aiohttp.ClientSession() as http, http.get(
            f"{hi.url}/fed/v1/state-statistics?from={SEEDED[0]}&to={SEEDED[-1]}",
            headers={"Authorization": auth}) as r:
        captured.append(await r.read())
    clock.advance(20 * 60_000)
    tx.peers.peers = [tx.as_peer(), genuine.__class__(
        "hi", "hub-hi", str(replay_server.make_url("/")), dict(genuine.hub_sign_keys))]
    status, out = await get_json(f"{tx.url}/api/v1/national/refresh?{Q}", OP, "POST")
    assert [(p["status"], p["code"]) for p in out["peers"]] == [("refused", "expired")]
    assert await stored_counts(tx) == (0, 0)

    # the genuine one is stored
    tx.peers.peers = [tx.as_peer(), genuine]
    status, out = await get_json(f"{tx.url}/api/v1/national/refresh?{Q}", OP, "POST")
    assert [(p["status"], p["code"]) for p in out["peers"]] == [("stored", None)]
    assert await stored_counts(tx) == (1, 3)
    if db_url.startswith("sqlite"):
        record("security-national-forged-statistics", area="security",
               case="forged state statistics from a peer hub",
               how="real hubs; a peer listed under a key it does not hold, a key id the "
                   "compact does not list, another network's document, a proxy editing "
                   "one figure of the signed document, a genuine document replayed 20 "
                   "minutes later",
               result="each refused (bad_signature, unknown_key, sender_mismatch, "
                      "bad_signature, expired) with no document or month stored; the "
                      "genuine document then stored",
               figures={"forgeries_refused": 5})


async def test_state_statistics_route_refuses_non_members(make_hubs: MakeHubs) -> None:
    clock = FakeClock()
    hubs = await make_hubs(["tx", "hi"], clock)
    tx, hi = hubs["tx"], hubs["hi"]
    await seed_releases(tx, SEEDED, seed=1)
    path = "/fed/v1/state-statistics"
    url = f"{tx.url}{path}?from={SEEDED[0]}&to={SEEDED[-1]}"

    def signed(origin: str, keys: NodeKeys, dest: str = "hub-tx") -> dict[str, str]:
        return {"Authorization": sign_request(
            signing_key=keys.signing_key, key_version=keys.key_version, method="GET",
            path=path, origin=origin, destination=dest, ts=clock.now_ms(), body=b"")}

    assert (await get_json(url))[1]["error"]["code"] == "bad_request_signature"
    agency, agency_keys = next(iter(tx.node_keys.items()))  # in tx's roster, not a hub
    status, body = await get_json(url, signed(agency, agency_keys))
    assert (status, body["error"]["code"]) == (403, "unknown_sender")
    status, body = await get_json(url, signed("hub-hi", NodeKeys.generate()))
    assert (status, body["error"]["code"]) == (401, "bad_request_signature")
    status, body = await get_json(url, signed("hub-hi", hi.keys, dest="hub-hi"))
    assert (status, body["error"]["code"]) == (421, "wrong_recipient")
    status, body = await get_json(f"{tx.url}{path}?from=2026-13&to=2026-01",
                                  signed("hub-hi", hi.keys))
    assert (status, body["error"]["code"]) == (400, "invalid_input")
    status, body = await get_json(url, signed("hub-hi", hi.keys))
    assert status == 200
    doc = body["state_statistics"]
    assert doc["network_id"] == "tx" and doc["figures"] == list(FIGURES)
    assert [m["nodes"] for m in doc["months"]] == [2, 2, 2]


async def test_roles_on_the_national_page_and_api(make_hubs: MakeHubs) -> None:
    clock = FakeClock()
    hubs = await make_hubs(["tx", "hi"], clock)
    tx, hi = hubs["tx"], hubs["hi"]
    await seed_releases(tx, SEEDED, seed=1)
    await seed_releases(hi, SEEDED, seed=2)
    token = await add_analyst(tx, clock.now_ms())
    status, body = await get_json(f"{tx.url}/api/v1/national/refresh?{Q}", bearer(token), "POST")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert await stored_counts(tx) == (0, 0)
    status, body = await get_json(f"{tx.url}/api/v1/national?{Q}")
    assert (status, body["error"]["code"]) == (401, "unauthenticated")
    status, body = await get_json(f"{tx.url}/api/v1/national?month_from=x", bearer(token))
    assert (status, body["error"]["code"]) == (400, "invalid_input")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{tx.url}/dashboard/national", allow_redirects=False) as r:
            assert r.status in (302, 303) and r.headers["Location"].startswith("/login")
        async with http.get(f"{tx.url}/dashboard/national?region=north",
                            headers=bearer(token)) as r:
            assert r.status == 400 and 'data-code="invalid_input"' in await r.text()
    await get_json(f"{tx.url}/api/v1/national/refresh?{Q}", OP, "POST")
    async with aiohttp.ClientSession() as http, http.get(
            f"{tx.url}/dashboard/national?{Q}", headers=bearer(token)) as r:
        html = await r.text()
        assert r.status == 200
    assert 'class="chart bars"' in html and 'id="national-table"' in html
    assert html.count("<tr data-month=") == 3 and "hi, tx" in html and "<script" not in html
    status, spec = await get_json(f"{tx.url}/api/v1/openapi.json")
    assert "/api/v1/national" in spec["paths"] and "/api/v1/national/refresh" in spec["paths"]


async def test_peers_are_fetched_on_schedule(make_hubs: MakeHubs) -> None:
    clock = FakeClock()
    hubs = await make_hubs(["tx", "hi"], clock)
    tx, hi = hubs["tx"], hubs["hi"]
    await seed_releases(hi, SEEDED, seed=2)
    schedule = tx.app[SCHEDULE]
    await schedule.run_pass()
    assert await stored_counts(tx) == (0, 0)  # not due yet
    clock.advance(FIRST_MS)
    await schedule.run_pass()
    assert [o.status for o in schedule.last] == ["stored"]
    assert await stored_counts(tx) == (1, 12)  # the last 12 complete months
    clock.advance(FIRST_MS)
    await schedule.run_pass()
    assert await stored_counts(tx) == (1, 12)  # next due in REFRESH_MS
    assert schedule.next_due is not None and schedule.next_due > clock.now_ms()
