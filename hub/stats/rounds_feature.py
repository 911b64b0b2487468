"""Wiring of shared aggregation into the hub (`hub.stats.rounds` holds the logic).

- Inbox handlers: `aggregate_share` (addressed to the hub) stores the hub's share;
  `aggregate_result` (from the policy's helper) combines and publishes, and queues a
  re-issued round in the same transaction when the helper reported nodes missing.
- A pass (`RoundsPass`, every `ROUND_POLL_MS` and on demand) starts the due months' rounds
  (last month from a day after its release day, `due_months`), when the roster policy says
  `aggregation = "shared"`; a round left open longer than `hub.stats.rounds.STALE_MS` (the
  helper refused or lost it) is closed and issued again.
- `POST /api/v1/rounds/{month}` (operator): start the month's round now (`{"round_id": ...}`
  or `{"round_id": null}` when a round is open or nothing is left to aggregate).
- `GET /api/v1/shared-figures?month_from=&month_to=` (operator, board_analyst): the published
  region-months with per-key variances (what the estimator reads).

Both are in the hub's OpenAPI document (`hub.openapi`, models in `rounds_models`).
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
from hub.stats.models import parse_query
from hub.stats.rounds import accept_result, accept_share, published_figures, start_rounds
from hub.stats.rounds_models import SharedFiguresQuery
from protocol.envelope import Opened
from protocol.messages import MessageType

__all__ = ["ROUNDS", "RoundsPass", "due_months", "setup"]

log = logging.getLogger("peernet.hub.rounds")

ROUND_POLL_MS = 60_000
ROUND_GRACE_MS = 24 * 3_600_000  # after the release day, for the nodes' shares to arrive
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def policy_noise(fed: FederationService) -> AggregateNoise:
    p = fed.roster.state.policy.privacy
    return calibrate(p.measure, p.budget_per_node_year, p.workload_weights,
                     p.per_person_month, p.per_cell)


def due_months(now_ms: int, release_day: int, grace_ms: int = ROUND_GRACE_MS) -> list[str]:
    """Months whose round may start: the month before last always, last month once its
    release day (UTC) plus `grace_ms` has passed (nodes send their shares on the release day;
    a share arriving after its region was published is left out, so the hub waits)."""
    d = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    last = (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)
    before = (last[0], last[1] - 1) if last[1] > 1 else (last[0] - 1, 12)
    out = [f"{before[0]:04d}-{before[1]:02d}"]
    opens = datetime(d.year, d.month, release_day, tzinfo=UTC).timestamp() * 1000 + grace_ms
    if now_ms >= opens:
        out.append(f"{last[0]:04d}-{last[1]:02d}")
    return out


class RoundsPass:
    """Starts rounds; `run_once(month=None)` is what the loop, the route and tests call."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = PassLoop("hub-rounds", self._pass, ROUND_POLL_MS)

    async def _pass(self) -> None:
        await self.run_once()

    async def run_once(self, month: str | None = None) -> str | None:
        """Start the round of `month` (or of every due month); the last round id started."""
        fed, clock = self.app[FEDERATION], self.app[CLOCK]
        state = fed.roster.state
        if state.current is None:
            return None
        policy = state.policy
        helper = policy.privacy.helper
        if policy.privacy.aggregation != "shared" or helper is None:
            return None
        now = clock.now_ms()
        months = [month] if month else due_months(now, policy.release_schedule.day_of_month)
        started: str | None = None
        for m in months:
            async with self.app[DB].write() as conn:
                body = await start_rounds(conn, m, now_ms=now)
                if body is None:
                    continue
                await fed.send(conn, helper, MessageType.AGGREGATE_ROUND, body)
            started = body["round_id"]
        return started


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
    q = parse_query(request.query, SharedFiguresQuery)
    async with request.app[DB].read() as conn:
        figs = await published_figures(conn, q.month_from or "0000-01", q.month_to or "9999-12")
    out: list[dict[str, Any]] = [
        {"month": f.month, "region": f.region, "nodes": len(f.nodes), "values": f.values,
         "variances": f.variances} for f in figs]
    return web.json_response({"figures": out})
