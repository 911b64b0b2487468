"""The hub's interstate routes, registered by `setup` (listed in `hub.app.FEATURES`).

With `network_id` set (and the board pinned), the federation service holds the compact and
the foreign rosters (`federation.interstate_runtime`); this room serves them:

- `GET /fed/v1/compact`, `GET /fed/v1/compact/{version}` (public): the held compact
  (`federation.compact_store.compact_routes`), for member hubs and this network's nodes;
- `GET /fed/v1/foreign-roster/{network_id}[?have_sha256=H]` (public): the newest roster of
  another member network that this hub holds (304 when it is the one hashed `H`). Nodes
  fetch it here and verify it themselves against the compact (signed by the member's
  board), so the hub is not trusted for it;
- `POST /api/v1/compact` (operator): install a signed compact version (body: the document);
  then the member networks' rosters are fetched in the background;
- `GET /api/v1/interstate` (operator): network id, compact version, members, the foreign
  roster versions held, and the relay queue per destination network.

Without `network_id` the `/fed/` routes answer 503 `no_compact` and the operator routes
400 `config`.
"""

from __future__ import annotations

import re

from aiohttp import web

from federation.compact_store import COMPACT_PATH, compact_routes
from federation.errors import FedCode, error_body
from federation.interstate_runtime import (
    FOREIGN_ROSTER_PATH,
    Interstate,
    foreign_roster_document,
)
from hub.appkeys import AUTHORIZE, DB, FEDERATION, RELAY
from hub.errors import Code, HubError
from protocol.ids import is_network_id

__all__ = ["setup"]

OPERATOR = frozenset({"operator"})
_SHA256 = re.compile(r"[A-Za-z0-9_-]{43}")


def _require(app: web.Application) -> Interstate:
    ist = app[FEDERATION].interstate
    if ist is None:  # the hub runs, alone: a request it cannot serve, not a server fault
        raise HubError(Code.CONFLICT, "this hub is in no compact: set network_id (and "
                       "board_keys) in its config to join one", "network_id")
    return ist


async def _no_compact(_request: web.Request) -> web.StreamResponse:
    return web.json_response(error_body(FedCode.NO_COMPACT, "this hub holds no compact"),
                             status=503)


async def _foreign_roster(request: web.Request) -> web.StreamResponse:
    network = request.match_info["network_id"]
    ist = request.app[FEDERATION].interstate
    if ist is None:
        return await _no_compact(request)
    if not is_network_id(network):
        return web.json_response(
            error_body(FedCode.BAD_INPUT, "not a network id", "network_id"), status=400)
    have = request.query.get("have_sha256")
    if have is not None and not _SHA256.fullmatch(have):
        return web.json_response(
            error_body(FedCode.BAD_INPUT, "have_sha256 must be a roster hash", "have_sha256"),
            status=400)
    doc = await foreign_roster_document(request.app[DB].engine, network, have)
    if doc == b"":
        return web.Response(status=304)
    if doc is None:
        return web.json_response(
            error_body(FedCode.NOT_FOUND, "no roster of that network is held"), status=404)
    return web.Response(body=doc, content_type="application/json")


async def _install(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, OPERATOR)
    ist = _require(request.app)
    fresh = await ist.store.accept_document(await request.read(), source="operator")
    if fresh:
        request.app[FEDERATION].refresh_interstate_soon(force=True)
    return web.json_response(
        {"accepted": [s.version for s in fresh], "version": ist.compact.version})


async def _status(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, OPERATOR)
    ist = _require(request.app)
    cur = ist.compact.current
    queued = await request.app[RELAY].queue_counts()
    networks: dict[str, int] = {}
    for dest, n in queued.items():
        if "/" in dest:
            net = dest.split("/", 1)[0]
            networks[net] = networks.get(net, 0) + n
    return web.json_response({
        "network_id": ist.network_id,
        "compact_version": ist.compact.version,
        "members": [] if cur is None else [
            {"network_id": m.network_id, "name": m.name, "hub_id": m.hub_id,
             "roster_version": ist.foreign.version(m.network_id)
             if m.network_id != ist.network_id else None}
            for m in cur.members()],
        "queued": networks,
    })


def setup(app: web.Application) -> None:
    ist = app[FEDERATION].interstate
    if ist is not None:
        app.add_routes(compact_routes(ist.store))
    else:
        app.router.add_get(COMPACT_PATH, _no_compact)
        app.router.add_get(COMPACT_PATH + "/{version}", _no_compact)
    app.router.add_get(FOREIGN_ROSTER_PATH, _foreign_roster)
    app.router.add_post("/api/v1/compact", _install)
    app.router.add_get("/api/v1/interstate", _status)
