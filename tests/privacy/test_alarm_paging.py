"""The hub's release alarms page like every list (`limit` + opaque `cursor`, `next_cursor`),
on SQLite and PostgreSQL, while a client that sends no parameters still gets `alarms`; a bad
paging parameter is a 400 `invalid_input` naming it. The shared-aggregation operator routes
are in the served OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, insert, select

from hub.appkeys import DB
from hub.stats.aggregates import AggregateAlarm
from hub.stats.models import AggregateAlarmsOut
from tests.federation.network import OPERATOR_TOKEN, Network, make_network

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
URL = "/api/v1/stats/alarms"


@pytest.fixture(params=["sqlite", "postgres"])
async def hub_with_alarms(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Network]:
    admin = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
    net = await make_network(1, tmp_path=tmp_path, db=request.param, pg_admin_url=admin)
    try:
        app = net.hub.app
        assert app is not None
        async with app[DB].write() as conn:
            await conn.execute(insert(AggregateAlarm), [
                {"kind": "conflict", "node_id": "agency-1", "month": "2026-03",
                 "stored_release_id": "0" * 26, "offered_release_id": None,
                 "offered_body_sha256": "A" * 43, "received_at": 1000 + i} for i in range(5)])
        yield net
    finally:
        await net.close()


async def _count(net: Network) -> int:
    app = net.hub.app
    assert app is not None
    async with app[DB].read() as conn:
        return int((await conn.execute(select(func.count()).select_from(AggregateAlarm)))
                   .scalar_one())


async def test_alarms_page_with_limit_and_cursor(hub_with_alarms: Network) -> None:
    base = hub_with_alarms.hub.url + URL
    async with aiohttp.ClientSession() as http:
        async with http.get(base, headers=AUTH) as r:  # an old client: no parameters
            assert r.status == 200
            whole = AggregateAlarmsOut.model_validate(await r.json())
        assert [a.received_at for a in whole.alarms] == [1004, 1003, 1002, 1001, 1000]
        assert whole.next_cursor is None
        seen: list[int] = []
        params: dict[str, str] = {"limit": "2"}
        pages = 0
        while True:
            async with http.get(base, params=params, headers=AUTH) as r:
                page = AggregateAlarmsOut.model_validate(await r.json())
            pages += 1
            seen += [a.received_at for a in page.alarms]
            if page.next_cursor is None:
                break
            params = {"limit": "2", "cursor": page.next_cursor}
        assert seen == [1004, 1003, 1002, 1001, 1000] and pages == 3
        for bad in ({"limit": "0"}, {"limit": "1001"}, {"cursor": "-1"}, {"cursor": "x"},
                    {"after": "1"}):
            async with http.get(base, params=bad, headers=AUTH) as r:
                err = (await r.json())["error"]
                assert (r.status, err["code"], err["field"]) == (400, "invalid_input",
                                                                  next(iter(bad))), bad
        async with http.get(base, params={"limit": "2"}) as r:
            assert r.status == 401
    assert await _count(hub_with_alarms) == 5


async def test_document_lists_the_rounds_routes_and_alarm_paging(
        hub_with_alarms: Network) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(hub_with_alarms.hub.url + "/api/v1/openapi.json") as r:
            doc = await r.json()
    start = doc["paths"]["/api/v1/rounds/{month}"]["post"]
    assert start["operationId"] == "startSharedRound" and start["tags"] == ["shared-aggregation"]
    assert [p["name"] for p in start["parameters"]] == ["month"]
    assert {"400", "401", "403"} <= set(start["responses"])
    figures = doc["paths"]["/api/v1/shared-figures"]["get"]
    assert {p["name"] for p in figures["parameters"]} == {"month_from", "month_to"}
    alarms = doc["paths"][URL]["get"]
    assert {p["name"] for p in alarms["parameters"]} == {"limit", "cursor"}
    assert "order is fixed" in alarms["description"]
