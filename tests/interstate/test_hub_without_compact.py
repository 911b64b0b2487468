"""A hub with no `network_id` runs alone: the interstate operator routes answer 409
`conflict` naming the setting (a request it cannot serve, not a server fault; the OpenAPI
fuzz found the 500 it gave before), and nothing is stored (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from sqlalchemy import text

from federation.clock import FakeClock
from federation.keystore import NodeKeys
from hub.app import create_app
from hub.appkeys import DB
from hub.config import HubSettings

TOKEN = "o" * 40


async def test_interstate_routes_on_a_hub_in_no_compact(tmp_path: Path, db_url: str) -> None:
    settings = HubSettings(hub_id="lone-hub", name="Lone Hub", data_dir=tmp_path,
                           db_url=db_url, operator_token=SecretStr(TOKEN))
    app = create_app(settings, clock=FakeClock(1_781_524_800_000), keys=NodeKeys.generate())
    async with TestServer(app, host="127.0.0.1") as server:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http:
            for method, path in (("POST", "/api/v1/compact"), ("GET", "/api/v1/interstate")):
                async with http.request(method, server.make_url(path), headers=auth,
                                        data=b'{"compact": {}}') as r:
                    assert r.status == 409, (path, await r.text())
                    err = (await r.json())["error"]
                    assert err["code"] == "conflict" and err["field"] == "network_id"
            async with http.post(server.make_url("/api/v1/compact"), data=b"{}") as r:
                assert r.status == 401  # the token is checked first
        async with app[DB].read() as conn:
            held = (await conn.execute(text("SELECT count(*) FROM fed_compact"))).scalar()
        assert held == 0
