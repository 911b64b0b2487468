"""The node's health for agency IT: Prometheus `/metrics` (federation.observe) with the
node's own figures, and `/healthz` with the roster version and whether the hub answers.

Node figures: the newest month released and how many releases are stored but not yet handed
to the federation layer (a stuck release pass shows here first); notifications by state and
channel (`failing` and `dead` are the ones an admin must look at). Nothing here reads an
encounter, a follow-up or a pseudonym."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from federation.observe.fed_samplers import add_federation_samplers
from federation.observe.hub_probe import HubProbe
from federation.observe.metrics import Sampler, ServerMetrics, setup_metrics
from node.core.appkeys import CLOCK, DB, SETTINGS
from node.core.routes import Route, add_routes
from node.notify.db import NotifyDelivery
from node.notify.kinds import DeliveryState
from node.privacy.ledger import LedgerRow, ReleaseDelivery
from node.web.federation import FEDERATION
from node.web.plumbing import json_response

__all__ = ["HUB_PROBE", "setup"]

HUB_PROBE = web.AppKey("peernet_hub_probe", HubProbe)


def setup(app: web.Application) -> None:
    fed = app[FEDERATION]
    # The hub's address: configured, else the roster's entry for it.
    probe = HubProbe(app[CLOCK], lambda: fed.hub_url or fed._hub_endpoint(), lambda: fed.http)
    app[HUB_PROBE] = probe
    metrics = setup_metrics(app, app[SETTINGS], "node")
    add_federation_samplers(metrics, app[DB], fed, probe)
    metrics.add_sampler("releases", _release_sampler(app))
    metrics.add_sampler("notifications", _notification_sampler(app))
    add_routes(app, [Route("GET", "/healthz", healthz, "healthz", None,
                           "Liveness, roster version and hub reachability")])


async def healthz(request: web.Request) -> web.Response:
    fed = request.app[FEDERATION]
    hub = await request.app[HUB_PROBE].check()
    return json_response({
        "ok": True,
        "roster_version": fed.roster.state.version,
        "hub": {"configured": hub.configured, "reachable": hub.reachable,
                "last_contact_ms": hub.last_ok_ms},
    })


def _release_sampler(app: web.Application) -> Sampler:
    async def sample(m: ServerMetrics) -> None:
        newest = m.gauge("peernet_release_newest_month",
                         "The newest month released, as YYYYMM (0: none yet).")
        undelivered = m.gauge("peernet_releases_undelivered",
                              "Releases stored but never handed to the federation layer.")
        async with app[DB].read() as conn:
            month = (await conn.execute(select(func.max(LedgerRow.month)))).scalar()
            delivered = select(ReleaseDelivery.release_id)
            waiting = (await conn.execute(select(func.count()).select_from(LedgerRow).where(
                LedgerRow.release_id.not_in(delivered)))).scalar()
        newest.set(int(month.replace("-", "")) if month else 0)
        undelivered.set(int(waiting or 0))

    return sample


def _notification_sampler(app: web.Application) -> Sampler:
    async def sample(m: ServerMetrics) -> None:
        by_state = m.gauge("peernet_notifications",
                           "Notification deliveries by state and channel.", ("state", "channel"))
        failures = m.gauge("peernet_notification_failures",
                           "Deliveries failing (being retried) or dead (given up).")
        async with app[DB].read() as conn:
            rows = (await conn.execute(select(
                NotifyDelivery.state, NotifyDelivery.channel, func.count())
                .group_by(NotifyDelivery.state, NotifyDelivery.channel))).all()
        by_state.clear()
        failing = 0
        for state, channel, n in rows:
            by_state.labels(state, channel).set(n)
            if state in (DeliveryState.FAILING.value, DeliveryState.DEAD.value):
                failing += int(n)
        failures.set(failing)

    return sample
