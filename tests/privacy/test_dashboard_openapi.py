"""The hub's OpenAPI document against the running hub: every documented parameter of
`/api/v1/stats` is accepted with an example value, the response matches the documented
model, and an undocumented or malformed parameter is a 400 `invalid_input`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from hub.stats.models import StatsDocument
from tests.federation.network import OPERATOR_TOKEN, Network, make_network

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
async def hub_only(tmp_path: Path) -> AsyncIterator[Network]:
    net = await make_network(1, tmp_path=tmp_path)
    try:
        yield net
    finally:
        await net.close()


async def test_document_matches_the_stats_route(hub_only: Network) -> None:
    base = hub_only.hub.url
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/api/v1/openapi.json") as r:
            assert r.status == 200
            doc = await r.json()
        assert doc["openapi"].startswith("3.1")
        op = doc["paths"]["/api/v1/stats"]["get"]
        params = {p["name"]: p for p in op["parameters"]}
        assert set(params) == {"month_from", "month_to", "region", "discipline", "node"}
        assert all(p["in"] == "query" and not p["required"] for p in params.values())
        ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/StatsDocument")
        assert {"400", "401", "403"} <= set(op["responses"])
        for name, p in params.items():
            example = p["schema"]["examples"][0]
            async with http.get(base + "/api/v1/stats", params={name: example},
                                headers=AUTH) as r:
                assert r.status == 200, (name, await r.text())
                StatsDocument.model_validate(await r.json())
            async with http.get(base + "/api/v1/stats.csv", params={name: example},
                                headers=AUTH) as r:
                assert r.status == 200 and r.content_type == "text/csv"
        for bad in ({"undocumented": "1"}, {"month_from": "April"}, {"node": "NOT VALID"},
                    {"discipline": "fire,"}):
            async with http.get(base + "/api/v1/stats", params=bad, headers=AUTH) as r:
                err = (await r.json())["error"]
                assert (r.status, err["code"], err["field"]) == (400, "invalid_input",
                                                                  next(iter(bad)))
        assert "/api/v1/stats/alarms" in doc["paths"] and "/api/v1/stats.csv" in doc["paths"]
