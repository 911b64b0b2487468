"""The national room's routes, registered by `setup` (listed in `hub.app.FEATURES`).

- `GET /fed/v1/state-statistics?from=YYYY-MM&to=YYYY-MM`: this hub's signed state statistics
  document (`protocol.state_stats`), for the hub of a compact member only: the request is
  signed per hop (`protocol.request_auth`) by a hub the compact lists, with a key it lists
  for that hub (else `unknown_sender` / `unknown_key` / `bad_request_signature`). The
  document is itself signed, so a relay in between cannot change a figure.
- `POST /api/v1/national/refresh?month_from=&month_to=` (operator): fetch every peer's
  document now (`hub.national.fetch`); the answer lists each peer's outcome and code.
- `GET /api/v1/national?month_from=&month_to=` (operator, board_analyst): the national sum
  (`hub.national.sums`) of this state's figures (computed now from hub.stats) and the
  peers' stored verified months, with the states reporting and missing per month.
- `GET /dashboard/national`: the same for board analysts as a page (`hub.national.pages`).
- in the background, every peer's document for the last 12 months every 6 hours
  (`hub.national.schedule`).

Peers come from `app[PEER_NETWORKS]` (`hub.national.peers.PeerNetworks`); by default
`CompactPeers`: the current compact's members (`federation.compact_state.CompactState`,
found on the application or the federation service), none without a compact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from federation.compact_state import CompactState
from federation.errors import from_protocol
from hub.appkeys import AUTHORIZE, CLOCK, DB, FEDERATION, KEYS, SETTINGS
from hub.errors import Code, HubError
from hub.national import peers as peers_mod
from hub.national.fetch import STATS_PATH
from hub.national.models import NationalQuery, StateStatsQuery
from hub.national.pages import national_page
from hub.national.publish import build_state_stats
from hub.national.schedule import SCHEDULE, Schedule, refresh, schedule_ctx
from hub.national.view import PEER_NETWORKS, READERS, national, own_network
from hub.stats.api import filter_from_query
from hub.stats.models import parse_query
from hub.stats.query import months_between
from protocol.errors import Code as WireCode
from protocol.errors import ProtocolError
from protocol.request_auth import verify_request
from protocol.state_stats import MAX_MONTHS, sign_state_stats

__all__ = ["PEER_NETWORKS", "CompactPeers", "setup", "signed_own_document"]

OPERATOR = frozenset({"operator"})


class CompactPeers:
    """`PeerNetworks` over the hub's `federation.compact_state.CompactState` (found on the
    application whatever key holds it, or on the federation service): the current compact's
    members; this hub's own network is `settings.network_id` when set, else the member whose
    hub id is this hub's. No compact: no peers (the national view is this state alone)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def _compact(self) -> Any:
        state = getattr(self.app[FEDERATION], "compact", None)
        if not isinstance(state, CompactState):
            state = next((v for v in self.app.values() if isinstance(v, CompactState)), None)
        return None if state is None else state.current

    def own_network_id(self) -> str | None:
        got = getattr(self.app[SETTINGS], "network_id", None)
        if isinstance(got, str) and got:
            return got
        me = self.app[SETTINGS].hub_id
        mine = [p.network_id for p in self.members() if p.hub_id == me]
        return mine[0] if len(mine) == 1 else None

    def members(self) -> Sequence[peers_mod.Peer]:
        compact = self._compact()
        if compact is None:
            return []
        return [peers_mod.from_member(m) for m in compact.members()]


class _HubKeys:
    """KeyResolver for per-hop requests from member hubs (by hub id)."""

    def __init__(self, members: Sequence[peers_mod.Peer]) -> None:
        self.members = members

    def verify_key(self, node_id: str, key_id: str, at_ms: int) -> bytes:
        found = [m for m in self.members if m.hub_id == node_id]
        if len(found) != 1:
            raise ProtocolError(WireCode.UNKNOWN_SENDER, "not the hub of a member network")
        key = found[0].hub_sign_keys.get(key_id)
        if key is None:
            raise ProtocolError(WireCode.UNKNOWN_KEY, "the compact lists no such hub key")
        return key


async def signed_own_document(app: web.Application, month_from: str, month_to: str) -> bytes:
    async with app[DB].read() as conn:
        doc = await build_state_stats(
            conn, network_id=own_network(app), hub_id=app[SETTINGS].hub_id,
            state=app[FEDERATION].roster.state, month_from=month_from, month_to=month_to,
            now_ms=app[CLOCK].now_ms())
    client = app[FEDERATION].client
    version, key = client.signer() if client is not None else (
        app[KEYS].key_version, app[KEYS].signing_key)
    return sign_state_stats(doc, key, version)


def _range(month_from: str, month_to: str) -> None:
    if month_from > month_to:
        raise HubError(Code.INVALID_INPUT, "the from month is after the to month", "month_from")
    if len(months_between(month_from, month_to)) > MAX_MONTHS:
        raise HubError(Code.INVALID_INPUT, f"at most {MAX_MONTHS} months", "month_to")


async def _state_statistics(request: web.Request) -> web.Response:
    app = request.app
    try:
        verify_request(request.headers.get("Authorization"), method=request.method,
                       path=request.raw_path, body=b"", me=app[SETTINGS].hub_id,
                       now_ms=app[CLOCK].now_ms(), keys=_HubKeys(app[PEER_NETWORKS].members()))
    except ProtocolError as exc:
        raise from_protocol(exc) from None
    try:
        q = StateStatsQuery.model_validate(dict(request.query))
    except ValidationError:
        raise HubError(Code.INVALID_INPUT, "give from and to months (YYYY-MM)") from None
    _range(q.month_from, q.month_to)
    body = await signed_own_document(app, q.month_from, q.month_to)
    return web.Response(body=body, content_type="application/json")


def _filter(request: web.Request, query: Any) -> tuple[str, str]:
    q = parse_query(query, NationalQuery)
    f = filter_from_query(q.model_dump(exclude_none=True), request.app[CLOCK].now_ms())
    return f.month_from, f.month_to


async def _national(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, READERS)
    month_from, month_to = _filter(request, request.query)
    return web.json_response(await national(request.app, month_from, month_to))


async def _refresh(request: web.Request) -> web.Response:
    app = request.app
    await app[AUTHORIZE](request, OPERATOR)
    month_from, month_to = _filter(request, request.query)
    if app[FEDERATION].client is None:
        raise HubError(Code.INTERNAL, "the federation client is not running")
    outcomes = await refresh(app, month_from, month_to)
    return web.json_response({"peers": [o.to_json() for o in outcomes]})


def setup(app: web.Application) -> None:
    """Listed in `hub.app.FEATURES`; tests and benchmarks may replace `app[PEER_NETWORKS]`
    before the app starts."""
    app[PEER_NETWORKS] = CompactPeers(app)
    app.router.add_get(STATS_PATH, _state_statistics)
    app.router.add_get("/api/v1/national", _national)
    app.router.add_post("/api/v1/national/refresh", _refresh)
    app.router.add_get("/dashboard/national", national_page)
    app[SCHEDULE] = Schedule(app)
    app.cleanup_ctx.append(schedule_ctx)
