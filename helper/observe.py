"""The helper's health: Prometheus `/metrics` (federation.observe) with its own figures
(shares held, groups answered, rounds answered) and the hub probe `/healthz` reports.

Counts only: a share is one aggregator's half of a noisy sum and never leaves as a figure."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from federation.clock import Clock
from federation.database import Database
from federation.observe.fed_samplers import add_federation_samplers
from federation.observe.hub_probe import HubProbe
from federation.observe.metrics import ServerMetrics, setup_metrics
from federation.service import FederationService
from helper.config import HelperSettings
from helper.store import HelperAnswer, HelperRound, HelperShare

__all__ = ["setup"]


def setup(app: web.Application, settings: HelperSettings, db: Database,
          fed: FederationService, clock: Clock) -> HubProbe:
    """Wire metrics into `app`; the hub probe, for `/healthz`."""
    # The hub's address: configured, else the roster's entry for it.
    probe = HubProbe(clock, lambda: fed.hub_url or fed._hub_endpoint(), lambda: fed.http)
    metrics = setup_metrics(app, settings, "helper")
    add_federation_samplers(metrics, db, fed, probe)

    async def sample(m: ServerMetrics) -> None:
        shares = m.gauge("peernet_helper_shares_held", "Shares held, all months.")
        groups = m.gauge("peernet_helper_groups_answered", "Noisy group sums answered.")
        rounds = m.gauge("peernet_helper_rounds_answered", "Aggregation rounds answered.")
        async with db.read() as conn:
            shares.set(int((await conn.execute(
                select(func.count()).select_from(HelperShare))).scalar() or 0))
            groups.set(int((await conn.execute(
                select(func.count()).select_from(HelperAnswer))).scalar() or 0))
            rounds.set(int((await conn.execute(
                select(func.count()).select_from(HelperRound))).scalar() or 0))

    metrics.add_sampler("helper", sample)
    return probe
