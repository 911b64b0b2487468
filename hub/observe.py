"""The hub's health for its operators: Prometheus `/metrics` (federation.observe) with the
hub's own figures: relay queue depth and its oldest message (a node that stopped collecting
shows here), releases held and the newest month received, open release alarms.

Counts and ages only: the hub holds no raw record, and no node's sealed text is read here."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from federation.observe.fed_samplers import add_federation_samplers
from federation.observe.metrics import ServerMetrics, setup_metrics
from hub.appkeys import CLOCK, DB, FEDERATION, SETTINGS
from hub.relay.forwarding import relay_queue
from hub.stats.aggregates import AggregateRelease

__all__ = ["setup"]


def setup(app: web.Application) -> None:
    metrics = setup_metrics(app, app[SETTINGS], "hub")
    add_federation_samplers(metrics, app[DB], app[FEDERATION])

    async def sample(m: ServerMetrics) -> None:
        queued = m.gauge("peernet_relay_queued", "Envelopes waiting at the hub for their node.")
        oldest = m.gauge("peernet_relay_oldest_seconds", "Age of the oldest relayed envelope.")
        nodes = m.gauge("peernet_relay_waiting_nodes", "Nodes with envelopes waiting.")
        held = m.gauge("peernet_releases_held", "Aggregate releases held by the hub.")
        newest = m.gauge("peernet_release_newest_month",
                         "The newest month any node released, as YYYYMM (0: none yet).")
        now = app[CLOCK].now_ms()
        async with app[DB].read() as conn:
            count, first, dests = (await conn.execute(select(
                func.count(), func.min(relay_queue.c.created_ts),
                func.count(relay_queue.c.destination.distinct())))).one()
            releases, month = (await conn.execute(select(
                func.count(), func.max(AggregateRelease.month)))).one()
        queued.set(int(count or 0))
        oldest.set(max(0, now - int(first)) / 1000 if first is not None else 0)
        nodes.set(int(dests or 0))
        held.set(int(releases or 0))
        newest.set(int(month.replace("-", "")) if month else 0)

    metrics.add_sampler("hub", sample)
