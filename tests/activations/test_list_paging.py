"""Issue 17 item 4: the activations list (page and API) pages with a count and filters by
side, incident day, state and affected discipline, through real node servers and a real hub
on SQLite and PostgreSQL; a peer supporter is refused and bad filters are refused with
stable codes, appending nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from node.core.vocabulary import Role
from tests.activations.helpers import HOUR
from tests.activations.netutil import add_user
from tests.activations.test_pages_plain import session
from tests.federation.network import Network, make_network

DAY = 24 * HOUR


@pytest.fixture(params=["sqlite", "postgres"])
async def net(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Network]:
    admin = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
    network = await make_network(2, tmp_path=tmp_path, db=request.param, pg_admin_url=admin)
    try:
        yield network
    finally:
        await network.close()


def _request(now: int, event_ts: int, affected: dict[str, int], **kw: Any) -> dict[str, Any]:
    body = {"incident_ref": "INC-7", "incident_type": "line_of_duty_death",
            "event_ts": event_ts, "affected": affected, "interventions": ["defusing"],
            "window_start_ts": now, "window_end_ts": now + 6 * HOUR, "peers_needed": 2,
            "reporting_location": "EOC", "priority": "urgent",
            "contact": {"role": "duty_officer", "phone": "+1 555 0100"},
            "approver": "chief", "expires_ts": now + 4 * HOUR, "targets": ["agency-2"]}
    body.update(kw)
    return body


async def _audit_count(node: Any) -> int:
    async with node.db.read() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar_one())


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


async def test_activations_filter_and_count(net: Network) -> None:
    a, b = net.node("agency-1"), net.node("agency-2")
    _, token = await add_user(a, "coord", Role.COORDINATOR)
    _, sup_token = await add_user(a, "sup", Role.PEER_SUPPORTER)
    await add_user(b, "coord", Role.COORDINATOR)
    now = net.clock.now_ms()
    bodies = [_request(now, now - 60_000, {"fire": 3}, draft=True),
              _request(now, now - 3 * DAY, {"ems": 2}),
              _request(now, now - 120_000, {"fire": 1, "ems": 4})]
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as api:
        for body in bodies:
            async with api.post(a.url + "/api/v1/activations", json=body, headers=auth) as r:
                assert r.status == 201, await r.text()
        await net.settle()

        async def total(query: str, node: Any = a) -> int:
            async with api.get(f"{node.url}/api/v1/activations?{query}", headers=auth) as r:
                got = await r.json()
                assert r.status == 200, got
                assert len(got["items"]) == min(got["total"], 200)
                return int(got["total"])

        today, earlier = _day(now), _day(now - 3 * DAY)
        assert await total("") == 3
        assert await total("status=draft") == 1
        assert await total("status=requested") == 2
        assert await total("discipline=ems") == 2
        assert await total("discipline=fire&status=requested") == 1
        assert await total(f"since={today}") == 2
        assert await total(f"until={earlier}") == 1
        assert await total("side=in") == 0 and await total("side=out") == 3
        async with api.get(a.url + "/api/v1/activations?limit=2", headers=auth) as r:
            got = await r.json()
        assert got["total"] == 3 and len(got["items"]) == 2 and got["next_cursor"] == "2"
        # Refusals: a peer supporter; bad filters (nothing appended to the audit log).
        sup = {"Authorization": f"Bearer {sup_token}"}
        for path in ("/api/v1/activations?status=draft", "/activations"):
            async with api.get(a.url + path, headers=sup) as r:
                assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
        before = await _audit_count(a)
        for query, code, field in (("status=lost", "invalid_enum", "status"),
                                   ("discipline=astronaut", "invalid_enum", "discipline"),
                                   ("since=2026-02-30", "invalid_input", "since"),
                                   (f"since={today}&until={earlier}", "invalid_input", "until")):
            async with api.get(f"{a.url}/api/v1/activations?{query}", headers=auth) as r:
                err = (await r.json())["error"]
                assert r.status == 422 and (err["code"], err["field"]) == (code, field), query
        assert await _audit_count(a) == before
    http, _ = await session(a, "coord")
    try:
        async with http.get(a.url + "/activations?discipline=fire") as r:
            html = await r.text()
        assert r.status == 200
        assert re.search(r'id="page-count">1–2 of 2<', html)
        assert html.count("data-activation=") == 2
        async with http.get(a.url + "/activations?status=lost") as r:
            assert r.status == 422 and 'data-code="invalid_enum"' in await r.text()
    finally:
        await http.close()
    http, _ = await session(b, "coord")
    try:
        async with http.get(b.url + "/activations?side=in&discipline=ems") as r:
            html = await r.text()
        assert re.search(r'id="page-count">1–2 of 2<', html) and "From Agency 1" in html
        async with http.get(f"{b.url}/activations?since={today}") as r:
            assert re.search(r'id="page-count">1–1 of 1<', await r.text())
    finally:
        await http.close()
