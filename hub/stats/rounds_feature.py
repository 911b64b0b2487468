"""Wiring of shared aggregation into the hub (`hub.stats.rounds` holds the logic).

- Inbox handlers: `aggregate_share` (addressed to the hub) stores the hub's share;
  `aggregate_result` (from the policy's helper) combines and publishes, and queues a
  re-issued round in the same transaction when the helper reported nodes missing.
- A pass (`RoundsPass`, every `ROUND_POLL_MS` and on demand) starts the due month's round
  once the release day has passed, when the roster policy says `aggregation = "shared"`.
- `POST /api/v1/rounds/{month}` (operator): start the month's round now (`{"round_id": ...}`
  or `{"round_id": null}` when a round is open or nothing is left to aggregate).
- `GET /api/v1/shared-figures?month_from=&month_to=` (operator, board_analyst): the published
  region-months with per-key variances (what the estimator reads).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.aggregate_noise import AggregateNoise, calibrate
from federation.service import FederationService
from federation.worker import PassLoop
from hub.appkeys import AUTHORIZE, CLOCK, DB, FEDERATION
from hub.errors import Code, HubError
from hub.stats.rounds import accept_result, accept_share, published_figures, start_rounds
from protocol.envelope import Opened
from protocol.messages import MessageType

__all__ = ["ROUNDS", "RoundsPass", "due_month", "setup"]

log = logging.getLogger("peernet.hub.rounds")

ROUND_POLL_MS = 60_000
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def policy_noise(fed: FederationService) -> AggregateNoise:
    p = fed.roster.state.policy.privacy
    return calibrate(p.measure, p.budget_per_node_year, p.workload_weights,
                     p.per_person_month, p.per_cell)


def due_month(now_ms: int, release_day: int) -> str | None:
    """The previous month, once `release_day` of this month has come (UTC)."""
    d = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    if d.day < release_day:
        return None
    y, m = (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)
    return f"{y:04d}-{m:02d}"


class RoundsPass:
    """Starts rounds; `run_once(month=None)` is what the loop, the route and tests call."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = PassLoop("hub-rounds", self._pass, ROUND_POLL_MS)

    async def _pass(self) -> None:
        await self.run_once()

    async def run_once(self, month: str | None = None) -> str | None:
        fed, clock = self.app[FEDERATION], self.app[CLOCK]
        state = fed.roster.state
        if state.current is None:
            return None
        policy = state.policy
        helper = policy.privacy.helper
        if policy.privacy.aggregation != "shared" or helper is None:
            return None
        now = clock.now_ms()
        month = month or due_month(now, policy.release_schedule.day_of_month)
        if month is None:
            return None
        async with self.app[DB].write() as conn:
            body = await start_rounds(conn, month, now_ms=now)
            if body is None:
                return None
            await fed.send(conn, helper, MessageType.AGGREGATE_ROUND, body)
        round_id: str = body["round_id"]
        return round_id


ROUNDS = web.AppKey("peernet_hub_rounds", RoundsPass)


def setup(app: web.Application) -> None:
    fed = app[FEDERATION]
    rounds = RoundsPass(app)
    app[ROUNDS] = rounds

    async def on_share(conn: AsyncConnection, opened: Opened) -> None:
        await accept_share(conn, opened.body_json, sender=opened.outer.from_,
                           state=fed.roster.state, now_ms=app[CLOCK].now_ms())

    async def on_result(conn: AsyncConnection, opened: Opened) -> None:
        again = await accept_result(conn, opened.body_json, sender=opened.outer.from_,
                                    state=fed.roster.state, noise=policy_noise(fed),
                                    now_ms=app[CLOCK].now_ms())
        if again is not None:
            await fed.send(conn, opened.outer.from_, MessageType.AGGREGATE_ROUND, again)

    fed.register_handler(MessageType.AGGREGATE_SHARE, on_share)
    fed.register_handler(MessageType.AGGREGATE_RESULT, on_result)
    app.router.add_post("/api/v1/rounds/{month}", _start)
    app.router.add_get("/api/v1/shared-figures", _figures)

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        if fed.run_worker:
            rounds.loop.start()
        try:
            yield
        finally:
            await rounds.loop.stop()

    app.cleanup_ctx.append(ctx)


async def _start(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, frozenset({"operator"}))
    month = request.match_info["month"]
    if not _MONTH.match(month):
        raise HubError(Code.INVALID_INPUT, "month must be YYYY-MM", "month")
    return web.json_response({"round_id": await request.app[ROUNDS].run_once(month)})


async def _figures(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, frozenset({"operator", "board_analyst"}))
    lo, hi = request.query.get("month_from", "0000-01"), request.query.get("month_to", "9999-12")
    for name, v in (("month_from", lo), ("month_to", hi)):
        if not _MONTH.match(v):
            raise HubError(Code.INVALID_INPUT, f"{name} must be YYYY-MM", name)
    async with request.app[DB].read() as conn:
        figs = await published_figures(conn, lo, hi)
    out: list[dict[str, Any]] = [
        {"month": f.month, "region": f.region, "nodes": len(f.nodes), "values": f.values,
         "variances": f.variances} for f in figs]
    return web.json_response({"figures": out})
