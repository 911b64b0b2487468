"""Shared-round figures in the statistics, through a real hub on SQLite and PostgreSQL: a
published region-month (stored as `hub.stats.rounds` publishes it) adds into that region's
v2 sums, so the API and the dashboard show it; a node-month never counts both locally and
in a round: a published figure one of whose contributors also released the month locally is
left out (with a warning), and the hub refuses a local release of a node-month it holds a
share of (`already_shared`, an alarm, nothing else stored)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import insert, select

from hub.appkeys import DB
from hub.stats.aggregates import (
    AggregateAlarm,
    AggregateError,
    AggregateRelease,
    receive_release,
)
from hub.stats.aggregates_workload import AggregateValue
from hub.stats.rounds import HubShare, SharedFigure
from hub.stats.workload_totals import AggregateValueTotal
from node.privacy.workload import truncated_workload
from protocol.workload import SCHEMA, WORKLOAD_KEYS
from tests.federation.network import Network
from tests.privacy.hub_fixtures import Keys, make_hub_store, release_body
from tests.privacy.synthetic import synthetic_columns
from tests.privacy.test_dashboard import client, login
from tests.privacy.test_dashboard_figures import MONTH, bare_hub, release_tiny_month

__all__ = ["bare_hub"]

VARIANCE = 8.0  # per key, as 2 sigma^2 of a small policy


def _truth(seed: int) -> list[int]:
    return [int(x) for x in truncated_workload(synthetic_columns(300, 90, seed=seed), 4, 1)]


async def _publish(net: Network, region: str, nodes: list[str], values: list[int]) -> None:
    """Store a published region-month as `hub.stats.rounds._publish` does."""
    async with net.hub.app[DB].write() as conn:
        await conn.execute(insert(SharedFigure).values(
            month=MONTH, region=region, values_json=json.dumps(values),
            variances_json=json.dumps([VARIANCE] * len(WORKLOAD_KEYS)),
            nodes=json.dumps(sorted(nodes)), round_id="01JAAAAAAAAAAAAAAAAAAAAAAA",
            published_at=net.clock.now_ms()))


async def _stats(net: Network, query: str = "") -> tuple[dict[str, Any], str]:
    base = net.hub.url
    q = f"?month_from={MONTH}&month_to={MONTH}{query}"
    async with client() as http:
        await login(http, base, "analyst")
        async with http.get(base + "/api/v1/stats" + q) as r:
            assert r.status == 200
            doc = await r.json()
        async with http.get(base + "/dashboard" + q) as r:
            html = await r.text()
    return doc, html


def _regions(net: Network) -> dict[str, list[str]]:
    state = net.hub.fed.state
    out: dict[str, list[str]] = {}
    for node in net.nodes:
        out.setdefault(state.node(node.node_id).region, []).append(node.node_id)
    return out


async def test_published_region_months_show_in_api_and_dashboard(bare_hub: Network) -> None:
    regions = _regions(bare_hub)
    truth = {r: _truth(k) for k, r in enumerate(sorted(regions))}
    for r, nodes in regions.items():
        await _publish(bare_hub, r, nodes, truth[r])
    doc, html = await _stats(bare_hub)
    month = doc["months"][0]
    total = sum(t[0] for t in truth.values())
    assert WORKLOAD_KEYS[0] == "total" and total > 100
    assert month["nodes_reporting"] == len(bare_hub.nodes)
    assert month["encounters"]["estimate"] == pytest.approx(total, abs=1e-6)
    assert 0 < month["encounters"]["se"] < 5  # only the two aggregators' noise
    assert "Nothing reported for this period" not in html
    assert f"{total:,}" in html
    one = sorted(regions)[0]
    doc1, _ = await _stats(bare_hub, f"&region={one}")
    assert doc1["months"][0]["encounters"]["estimate"] == pytest.approx(truth[one][0], abs=1e-6)
    assert doc1["months"][0]["nodes_reporting"] == len(regions[one])


async def test_a_node_month_in_both_is_not_added(
    bare_hub: Network, caplog: pytest.LogCaptureFixture,
) -> None:
    await release_tiny_month(bare_hub)  # both nodes release the month locally (v2)
    local, _ = await _stats(bare_hub)
    regions = _regions(bare_hub)
    region, nodes = sorted(regions.items())[0]
    with caplog.at_level(logging.WARNING, logger="peernet.hub.stats"):
        await _publish(bare_hub, region, nodes, _truth(1))
        doc, _ = await _stats(bare_hub)
    assert doc["months"][0]["encounters"] == local["months"][0]["encounters"]
    assert doc["months"][0]["nodes_reporting"] == local["months"][0]["nodes_reporting"]
    assert any("left out" in r.getMessage() and region in r.getMessage()
               for r in caplog.records)


async def test_local_release_of_a_shared_node_month_refused(db_url: str) -> None:
    engine = await make_hub_store(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(HubShare).values(
                node_id="station-1", month="2026-08", region="north", body_sha256="x" * 43,
                share=b"AAAA", excluded=False, received_at=0))
        body = release_body("station-1", "2026-08", schema=SCHEMA)
        with pytest.raises(AggregateError) as err:
            await receive_release(engine, body, sender="station-1", keys=Keys(["station-1"]),
                                  region="north", now_ms=1_790_000_000_000)
        assert err.value.code == "already_shared"
        async with engine.connect() as conn:
            alarms = (await conn.execute(select(AggregateAlarm.kind, AggregateAlarm.node_id,
                                                AggregateAlarm.month))).all()
            assert [tuple(a) for a in alarms] == [("already_shared", "station-1", "2026-08")]
            for t in (AggregateRelease, AggregateValue, AggregateValueTotal):
                assert (await conn.execute(select(t.__table__))).all() == []
    finally:
        await engine.dispose()
