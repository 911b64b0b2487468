"""Interstate activation on the coordinator pages, through real servers (two networks) on
SQLite and PostgreSQL: the new-request page lists another network's agencies by qualified
name, a request to one is held for approval when the policy says so, an approver approves it
on the page (sent then), and the responder sees it; a coordinator without approval is
refused on the page with nothing sent."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from node.activation.db import Activation
from node.core.vocabulary import Role
from tests.activations.netutil import add_user
from tests.activations.test_pages_plain import request_form, session
from tests.interstate.relay_networks import Pair, make_pair


@pytest.fixture(params=["sqlite", "postgres"])
async def pair(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    pg = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
    p = await make_pair(tmp_path, db=request.param, pg_admin_url=pg)
    try:
        yield p
    finally:
        await p.close()


async def _count(node: Any) -> int:
    async with node.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(Activation))
                    ).scalar_one())


async def test_request_page_held_then_approved(pair: Pair) -> None:
    a, b = pair.node("tx", "agency-a"), pair.node("hi", "agency-b")
    await add_user(a, "coord", Role.COORDINATOR)
    approver_id, _ = await add_user(a, "coord-approver", Role.COORDINATOR)
    await add_user(b, "coord", Role.COORDINATOR)
    _, admin_token = await add_user(a, "admin", Role.ADMIN)
    async with aiohttp.ClientSession() as api:
        async with api.put(a.url + "/api/v1/activations/interstate/policy",
                           json={"require_approval_out": True, "require_approval_in": False,
                                 "approvers": [str(approver_id)]},
                           headers={"Authorization": f"Bearer {admin_token}"}) as r:
            assert r.status == 200

    http, csrf = await session(a, "coord")
    try:
        async with http.get(a.url + "/activations/new?network=hi") as r:
            html = await r.text()
        assert 'id="foreign-targets"' in html and 'value="hi/agency-b"' in html
        assert "sent after approval" in html
        async with http.post(a.url + "/activations", allow_redirects=False,
                             data=request_form(csrf, "2026-01-01T10:00",
                                               targets=["hi/agency-b"])) as r:
            assert r.status == 303, await r.text()
            location = r.headers["Location"]
        aid = location.split("/activations/")[1].split("?")[0]
        async with http.get(a.url + f"/activations/{aid}") as r:
            html = await r.text()
        assert 'data-approval="pending"' in html and 'data-op="approve"' in html
        # this coordinator may not approve: refused on the page, nothing sent
        async with http.post(a.url + f"/activations/{aid}", allow_redirects=False,
                             data={"csrf": csrf, "op": "approve"}) as r:
            assert r.status == 403
            assert 'data-code="forbidden"' in await r.text()
        await pair.settle()
        assert await _count(b) == 0
    finally:
        await http.close()

    http, csrf = await session(a, "coord-approver")
    try:
        async with http.post(a.url + f"/activations/{aid}", allow_redirects=False,
                             data={"csrf": csrf, "op": "approve"}) as r:
            assert r.status == 303
            location = r.headers["Location"]
        async with http.get(a.url + location) as r:
            html = await r.text()
        assert re.search(r'id="notice">Approved\.<', html)
        assert 'data-approval="approved"' in html
    finally:
        await http.close()
    await pair.settle()

    http, _ = await session(b, "coord")
    try:
        async with http.get(f"{b.url}/activations/{aid}?requester=tx/agency-a") as r:
            html = await r.text()
        assert r.status == 200 and "Requested by" in html and "tx/agency-a" in html
        assert 'id="offer-form"' in html
    finally:
        await http.close()
