"""The hub's inbox batch handler for `aggregate_release` (issue 16 item 3).

Releases arriving through the federation inbox used to reach the hub one at a time, each
`accept_release` (a batch of one: two lookups and a statement per table) inside the inbox's
shared transaction. The inbox now hands every release of its transaction to this handler at
once (`federation.inbox_handlers.BatchHandler`), which is `hub.stats.ingest.accept_batch`:
each offer checked alone, one lookup for the batch, one statement per table. A bad release
in the batch gets its own refusal (its `AggregateError`, stable code) and writes nothing;
the others are stored as they would have been one by one. Conflict alarms go where the
one-message handler puts them (`hub.stats.api`: written once the batch has committed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.inbox_handlers import BatchHandler
from hub.appkeys import CLOCK, FEDERATION
from hub.stats.aggregates_errors import AggregateError
from hub.stats.ingest import Offer, accept_batch
from protocol.envelope import Opened

__all__ = ["release_batch_handler"]


def release_batch_handler(app: web.Application,
                          alarm: Callable[[dict[str, Any]], None]) -> BatchHandler:
    """The batch handler; `alarm` keeps a refused release's conflict alarm for later."""

    async def handle(conn: AsyncConnection,
                     batch: Sequence[Opened]) -> list[BaseException | None]:
        state = app[FEDERATION].roster.state
        privacy = state.policy.privacy
        offers = [Offer(o.body_json, o.outer.from_, state.node(o.outer.from_).region)
                  for o in batch]
        outcomes = await accept_batch(
            conn, offers, keys=state, now_ms=app[CLOCK].now_ms(),
            allowance=Decimal(privacy.budget_per_node_year) / 12,
            weights=privacy.workload_weights, measure=privacy.measure)
        out: list[BaseException | None] = []
        for outcome in outcomes:
            if isinstance(outcome, AggregateError):
                if outcome.alarm is not None:
                    alarm(outcome.alarm)
                out.append(outcome)
            else:
                out.append(None)
        return out

    return handle
