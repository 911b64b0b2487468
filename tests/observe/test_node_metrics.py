"""`/metrics` and `/healthz` on a real node (SQLite and PostgreSQL): access rules, the
Prometheus text parsed by prometheus-client's own parser, route templates (never a path
with a record id), refusals by stable code, outbox figures read from the database, the
separate listener, and the hub probe."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from federation.observe.fed_samplers import latency_quantiles
from federation.observe.metrics import METRICS
from federation.store import OutboxState, outbox
from tests.node.conftest import MakeNode, encounter

TOKEN = "metrics-token-for-tests-0123456789"  # noqa: S105


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams: dict[str, Any], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in fams[name].samples
            if s.name == name or s.name == name + "_total"}


async def test_metrics_need_the_token_and_are_off_without_one(make_node: MakeNode) -> None:
    node = await make_node(seed=False)
    r = await node.client.get("/metrics")
    assert r.status == 404  # no token, no listener: nothing to scrape
    await node.client.get("/healthz")  # and nothing counted that nobody could read
    assert _counted(node.client.app) == 0
    other = await make_node(seed=False, metrics_token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = await other.client.get("/metrics", headers=headers)
        assert r.status == 401, headers
        assert (await r.json())["error"]["code"] == "unauthenticated"
    r = await other.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert _counted(other.client.app) > 0  # the refused scrapes and this one


def _counted(app: web.Application) -> float:
    """Responses counted by the request middleware, every route and status."""
    return sum(s.value for m in app[METRICS].registry.collect()
               if m.name == "peernet_http_responses" for s in m.samples
               if s.name.endswith("_total"))


async def test_request_latency_by_route_template_and_refusals_by_code(
        make_node: MakeNode) -> None:
    node = await make_node(metrics_token=TOKEN)
    status, made = await node.post("sup1", "/api/v1/encounters", encounter())
    assert status == 201
    enc_id = made["id"]
    assert (await node.get("sup1", f"/api/v1/encounters/{enc_id}"))[0] == 200
    r = await node.client.post("/api/v1/encounters", data=b"{not json",
                               headers={**node.auth("sup1"), "Content-Type": "application/json"})
    assert r.status == 400
    bad_code = (await r.json())["error"]["code"]
    r = await node.client.get("/api/v1/encounters", headers={"Authorization": "Bearer nope"})
    assert r.status == 401
    r = await node.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = await r.text()
    assert enc_id not in text  # the route's template, never the record's id
    fams = families(text)
    routes = {s.labels["route"] for s in fams["peernet_http_request_duration_seconds"].samples}
    assert "/api/v1/encounters/{encounter_id}" in routes or any(
        "{" in x and x.startswith("/api/v1/encounters/") for x in routes), routes
    refusals = samples(fams, "peernet_http_refusals")
    assert refusals[(("code", bad_code),)] == 1
    assert refusals[(("code", "unauthenticated"),)] >= 1
    responses = samples(fams, "peernet_http_responses")
    assert responses[(("route", "/api/v1/encounters"), ("status", "2xx"))] == 1


async def test_outbox_roster_and_delivery_figures_come_from_the_database(
        make_node: MakeNode) -> None:
    node = await make_node(seed=False, metrics_token=TOKEN)
    now = node.clock.now_ms()
    rows = [
        {"state": OutboxState.PENDING, "created_ts": now - 90_000, "acked_ts": None,
         "failed_code": None},
        {"state": OutboxState.DONE, "created_ts": now - 5_000, "acked_ts": now - 4_000,
         "failed_code": None},
        {"state": OutboxState.DONE, "created_ts": now - 9_000, "acked_ts": now - 1_000,
         "failed_code": None},
        {"state": OutboxState.FAILED, "created_ts": now - 9_000, "acked_ts": now - 8_000,
         "failed_code": "unknown_recipient"},
    ]
    async with node.ctx.db.write() as conn:
        for i, row in enumerate(rows):
            await conn.execute(insert(outbox).values(
                destination="test-ems", msg_id=f"01J{i:023d}", msg_type="activation_request",
                envelope=b"x", intent=None, attempts=1, next_attempt_ts=now, expires_ts=now + 10**9,
                sent_ts=None, last_error=None, carrier=None, **row))
    r = await node.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    fams = families(await r.text())
    depth = samples(fams, "peernet_outbox_messages")
    assert depth[(("state", "pending"),)] == 1
    assert depth[(("state", "done"),)] == 2
    assert depth[(("state", "failed"),)] == 1
    assert samples(fams, "peernet_outbox_oldest_pending_seconds")[()] == 90.0
    latency = samples(fams, "peernet_delivery_latency_seconds")
    assert latency[(("quantile", "1"),)] == 8.0  # the failed row's ack counts as delivered
    assert latency[(("quantile", "0.5"),)] == 1.0
    refused = samples(fams, "peernet_federation_refusals")
    assert refused[(("code", "unknown_recipient"), ("direction", "sent"))] == 1
    assert samples(fams, "peernet_roster_version")[()] == 0


def test_latency_quantiles_nearest_rank() -> None:
    assert latency_quantiles([]) == {}
    q = latency_quantiles([1000, 2000, 3000, 4000, 100_000])
    assert q == {"0.5": 3.0, "0.95": 100.0, "1": 100.0}
    assert latency_quantiles([500]) == {"0.5": 0.5, "0.95": 0.5, "1": 0.5}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_separate_listener_serves_metrics_without_the_main_address(
        make_node: MakeNode) -> None:
    port = _free_port()
    node = await make_node(seed=False, metrics_port=port)
    assert node.client.app is not None
    assert node.client.app[METRICS].listening
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
            assert r.status == 200
            assert "peernet_outbox_messages" in families(await r.text())
        async with http.get(f"http://127.0.0.1:{port}/api/v1/me") as r:
            assert r.status == 404  # only /metrics lives there
    r = await node.client.get("/metrics")
    assert r.status == 404  # no token: not on the main address


async def test_healthz_reports_roster_version_and_hub_reachability(
        make_node: MakeNode) -> None:
    hits: list[str] = []

    async def fake_hub_health(_r: web.Request) -> web.Response:
        hits.append("x")
        return web.json_response({"ok": True})

    hub_app = web.Application()
    hub_app.router.add_get("/healthz", fake_hub_health)
    async with TestServer(hub_app) as hub:
        node = await make_node(seed=False, hub_url=str(hub.make_url("")).rstrip("/"),
                               metrics_token=TOKEN)
        r = await node.client.get("/healthz")
        body = await r.json()
        assert body["ok"] is True and body["roster_version"] == 0
        assert body["hub"] == {"configured": True, "reachable": True,
                               "last_contact_ms": node.clock.now_ms()}
        await node.client.get("/healthz")
        assert len(hits) == 1  # cached: a health check storm is not a hub storm
        r = await node.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        fams = families(await r.text())
        assert samples(fams, "peernet_hub_reachable")[()] == 1
    dead = await make_node(seed=False, hub_url=f"http://127.0.0.1:{_free_port()}")
    body = await (await dead.client.get("/healthz")).json()
    assert body["hub"] == {"configured": True, "reachable": False, "last_contact_ms": None}
    alone = await make_node(seed=False)
    body = await (await alone.client.get("/healthz")).json()
    assert body["hub"]["configured"] is False


