"""The federation figures every server exposes, read from its database at scrape time:
outbox depth by state, the oldest pending message, delivery latency of recent
acknowledgements, refusals by code (received and sent), roster version and age, open
governance alarms; for a server with a hub (node, helper), the last contact with it.

Everything here is a count, an age or a stable code: no message body, no node's text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from federation.database import Database
from federation.observe.hub_probe import HubProbe
from federation.observe.metrics import ServerMetrics
from federation.store import OutboxState, alarms, inbox, outbox, rosters

if TYPE_CHECKING:
    from federation.service import FederationService

__all__ = ["add_federation_samplers", "latency_quantiles"]

LATENCY_WINDOW_MS = 3_600_000  # delivery latency over the last hour's acknowledgements
LATENCY_ROWS = 5_000


def latency_quantiles(latencies_ms: list[int]) -> dict[str, float]:
    """Median, 95th percentile and maximum in seconds (nearest rank); empty: nothing."""
    if not latencies_ms:
        return {}
    xs = sorted(latencies_ms)

    def rank(q: float) -> float:
        return xs[min(len(xs) - 1, max(0, int(q * len(xs) + 0.999999) - 1))] / 1000

    return {"0.5": rank(0.5), "0.95": rank(0.95), "1": xs[-1] / 1000}


def add_federation_samplers(metrics: ServerMetrics, db: Database, fed: FederationService,
                            probe: HubProbe | None = None) -> None:
    depth = metrics.gauge("peernet_outbox_messages", "Outbox messages by state.", ("state",))
    oldest = metrics.gauge("peernet_outbox_oldest_pending_seconds",
                           "Age of the oldest message still waiting to be delivered.")
    latency = metrics.gauge(
        "peernet_delivery_latency_seconds",
        "Queue-to-acknowledgement time of the last hour's deliveries (quantile 1 = max).",
        ("quantile",))
    delivered = metrics.gauge("peernet_delivered_last_hour",
                              "Messages acknowledged by their destination in the last hour.")
    refused = metrics.gauge(
        "peernet_federation_refusals",
        "Federation messages refused, by direction and stable code (rows still held).",
        ("direction", "code"))
    version = metrics.gauge("peernet_roster_version", "The current roster version (0: none).")
    age = metrics.gauge("peernet_roster_age_seconds",
                        "Time since the current roster version was accepted.")
    open_alarms = metrics.gauge("peernet_governance_alarms_open",
                                "Governance alarms not yet acknowledged.")

    async def sample(_m: ServerMetrics) -> None:
        now = fed.clock.now_ms()
        async with db.read() as conn:
            counts = (await conn.execute(
                select(outbox.c.state, func.count()).group_by(outbox.c.state))).all()
            first = (await conn.execute(select(func.min(outbox.c.created_ts)).where(
                outbox.c.state == OutboxState.PENDING))).scalar()
            acked = (await conn.execute(
                select(outbox.c.acked_ts - outbox.c.created_ts)
                .where(outbox.c.acked_ts >= now - LATENCY_WINDOW_MS)
                .order_by(outbox.c.acked_ts.desc()).limit(LATENCY_ROWS))).scalars().all()
            ins = (await conn.execute(
                select(inbox.c.code, func.count()).where(inbox.c.status == "refused")
                .group_by(inbox.c.code))).all()
            outs = (await conn.execute(
                select(outbox.c.failed_code, func.count())
                .where(outbox.c.state == OutboxState.FAILED)
                .group_by(outbox.c.failed_code))).all()
            accepted = (await conn.execute(
                select(rosters.c.accepted_ts).order_by(rosters.c.version.desc()).limit(1)
            )).scalar()
            alarm_count = (await conn.execute(select(func.count()).select_from(alarms).where(
                alarms.c.acknowledged_ts.is_(None)))).scalar()
        depth.clear()
        for state in (OutboxState.PENDING, OutboxState.DONE, OutboxState.FAILED):
            depth.labels(state).set(0)
        for state, n in counts:
            depth.labels(state).set(n)
        oldest.set(max(0, now - int(first)) / 1000 if first is not None else 0)
        latency.clear()
        for q, v in latency_quantiles([int(x) for x in acked if x is not None]).items():
            latency.labels(q).set(v)
        delivered.set(len(acked))
        refused.clear()
        for direction, rows in (("received", ins), ("sent", outs)):
            for code, n in rows:
                refused.labels(direction, code or "unknown").set(n)
        version.set(fed.roster.state.version)
        age.set(max(0, now - int(accepted)) / 1000 if accepted is not None else 0)
        open_alarms.set(int(alarm_count or 0))

    metrics.add_sampler("federation", sample)
    if probe is not None:
        _add_hub_contact(metrics, db, fed, probe)


def _add_hub_contact(metrics: ServerMetrics, db: Database, fed: FederationService,
                     probe: HubProbe) -> None:
    last = metrics.gauge("peernet_hub_last_contact_timestamp_seconds",
                         "Unix time of the last answer from the hub (0: never).")
    reachable = metrics.gauge("peernet_hub_reachable", "1 when the hub answered its last probe.")

    async def sample(_m: ServerMetrics) -> None:
        state = await probe.check()
        acked: Any = None
        hub = fed.hub_id
        if hub:
            async with db.read() as conn:
                acked = (await conn.execute(select(func.max(outbox.c.acked_ts)).where(
                    outbox.c.destination == hub))).scalar()
        newest = max(int(acked or 0), state.last_ok_ms or 0)
        last.set(newest / 1000)
        reachable.set(1 if state.reachable else 0)

    metrics.add_sampler("hub_contact", sample)


