"""A node that left the network runs alone (`node.ops.detach`): the app-side switch.

`setup(app)` (last in `node.web.app.FEATURES`) adds two start-up steps around the
federation service's own and one middleware:

- right after the database is migrated (before the federation starts), it reads whether
  the node detached; if so the federation service is told to run no worker (no outbox
  passes, no roster fetches, and the audit anchor loop, which follows the same switch,
  does not start) and forgets the hub's URL;
- after every feature started, the service's roster is replaced by an empty one: nothing
  can be sent (`no_roster`), the monthly release pass finds no policy and stops, the
  anchor finds no hub; the stored roster versions stay in the database;
- `/fed/v1/...` requests are answered 403 `detached`.

Pages and the API, which read and write the node's own records, are untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from federation.roster_state import RosterState
from node.core.appkeys import DB
from node.ops.detach import detached_info
from node.web.federation import FEDERATION
from node.web.plumbing import json_response

__all__ = ["DETACHED", "Membership", "setup"]


@dataclass
class Membership:
    detached: dict[str, Any] | None = None


DETACHED = web.AppKey("peernet_ops_detached", Membership)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _before_federation(app: web.Application) -> AsyncIterator[None]:
    info = await detached_info(app[DB])
    app[DETACHED].detached = info
    if info is not None:
        fed = app[FEDERATION]
        fed.run_worker = False
        fed.hub_url = None
    yield


async def _after_federation(app: web.Application) -> AsyncIterator[None]:
    if app[DETACHED].detached is not None:
        fed = app[FEDERATION]
        fed.roster.state = RosterState(fed.clock, None)
    yield


@web.middleware
async def _refuse_federation(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/fed/v1/") and request.app[DETACHED].detached is not None:
        return json_response({"error": {"code": "detached", "message": "this node left the "
                                        "network", "field": None}}, status=403)
    return await handler(request)


def setup(app: web.Application) -> None:
    app[DETACHED] = Membership()
    app.cleanup_ctx.insert(1, _before_federation)  # index 0: the core's database context
    app.cleanup_ctx.append(_after_federation)
    app.middlewares.insert(0, _refuse_federation)
