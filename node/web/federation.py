"""Node-side federation wiring: one `FederationService` per node app (`app[FEDERATION]`).

`setup(app)` (listed in `node.web.app.FEATURES`) creates the service over the node's database
(its write discipline, `app[DB].write`), clock and keys, pins the board keys from
`NodeSettings.board_keys` / `board_threshold`, and
- mounts `PUT /fed/v1/send/{txn_id}` and `GET /fed/v1/roster[/{version}]` (public routes:
  the send route authenticates every request by its per-hop signature, and reads its body
  with its own limit, up to a full batch of 50 envelopes: a front middleware lets that one
  route past the node's page/API body limit, and only that route);
- adds `GET /api/v1/federation/alarms` and `GET /api/v1/federation/outbox` (admin, auditor);
- runs the service as a cleanup context (after the core's, so the database is migrated):
  load the roster (fetching it from `hub_url` if the database has none), replay the outbox,
  run the worker.

Business code (the activation services) uses:

    fed = app[FEDERATION]
    fed.register_handler(MessageType.ACTIVATION_OFFER, on_offer)   # in its own setup(app)
    msg_id = await fed.send(conn, to, MessageType.ACTIVATION_REQUEST, body,
                            thread_id=None, in_reply_to=None)      # inside `app[DB].write()`
    fed.state.nodes(discipline="fire")                             # the roster directory

Handlers run inside the inbox's transaction with that transaction's `AsyncConnection`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from federation.roster_acceptance import BoardPin
from federation.service import FederationService
from federation.transport import SEND_PATH
from node.core.appkeys import CLOCK, DB, KEYS, SETTINGS
from node.core.routes import Route, add_routes
from node.core.vocabulary import Role
from node.web.plumbing import json_response

__all__ = ["FEDERATION", "setup"]

FEDERATION = web.AppKey("peernet_federation", FederationService)

_SEND_PREFIX = SEND_PATH.split("{", 1)[0]
_READERS = frozenset({Role.ADMIN, Role.AUDITOR})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _pin(app: web.Application) -> BoardPin | None:
    s = app[SETTINGS]
    if not s.board_keys:
        return None
    return BoardPin.from_strings(s.board_keys, s.board_threshold or len(s.board_keys))


@web.middleware
async def _federation_first(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The send route has its own authentication and body limit (a batch is larger than the
    # node's form/API limit): run its handler directly, skipping the page middlewares.
    if request.method == "PUT" and request.path.startswith(_SEND_PREFIX):
        route_handler = request.match_info.handler
        return await route_handler(request)
    return await handler(request)


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    db = app[DB]
    fed = FederationService(
        me=settings.node_id,
        keys=app[KEYS],
        engine=db.engine,
        write=db.write,
        clock=app[CLOCK],
        pin=_pin(app),
        hub_url=settings.hub_url,
        network_id=settings.network_id,
    )
    app[FEDERATION] = fed
    app.middlewares.insert(0, _federation_first)
    send = fed.send_handler()
    roster_get, roster_get_version = (r.handler for r in fed.routes()[1:])
    add_routes(
        app,
        [
            Route(
                "PUT",
                SEND_PATH,
                send,
                "fed_send",
                None,
                "Federation batch (per-hop signed)",
                csrf=False,
            ),
            Route("GET", "/fed/v1/roster", roster_get, "fed_roster", None, "Newest signed roster"),
            Route(
                "GET",
                "/fed/v1/roster/{version}",
                roster_get_version,
                "fed_roster_version",
                None,
                "A signed roster version",
            ),
            Route(
                "GET",
                "/api/v1/federation/alarms",
                _alarms,
                "fed_alarms",
                _READERS,
                "Governance alarms",
                tags=("federation",),
            ),
            Route(
                "GET",
                "/api/v1/federation/outbox",
                _outbox,
                "fed_outbox",
                _READERS,
                "Outbox counts by state",
                tags=("federation",),
            ),
        ],
    )
    app.cleanup_ctx.append(fed.cleanup_ctx)


async def _alarms(request: web.Request) -> web.StreamResponse:
    return json_response({"alarms": await request.app[FEDERATION].roster.list_alarms()})


async def _outbox(request: web.Request) -> web.StreamResponse:
    fed = request.app[FEDERATION]
    return json_response({"roster_version": fed.state.version, "outbox": await fed.outbox_counts()})
