"""`create_app(settings, *, clock=None, keys=None)`: the hub's aiohttp application.

Wiring: the database (`hub.db.Database`, migrated to all heads on start), the federation
runtime (`federation.service.FederationService` with `is_hub=True`: roster storage and
serving, the inbox for envelopes addressed to the hub, acks), the relay (`hub.relay.forwarding`) for
envelopes addressed to anyone else, the central activation log, and a small JSON API.

Routes:
- `PUT /fed/v1/send/{txn_id}` (per-hop signed): each envelope goes to the hub's inbox when
  its `to` is the hub, otherwise to the relay queue; results stay positional.
- `GET /fed/v1/roster`, `GET /fed/v1/roster/{version}`: signed roster documents.
- `GET /healthz`; `GET /api/v1/directory` (public roster facts).
- operators: `GET /api/v1/activation-log` (also board analysts), `GET /api/v1/relay/queue`,
  `GET /api/v1/federation/alarms`, `POST /api/v1/roster` (install a signed roster version;
  the board's signatures are what make it acceptable).

Extension points for other features (the privacy engineer's aggregates, stats, dashboard,
hub users and login), one line each:
- write `def setup(app: web.Application) -> None` and append it to `FEATURES` below; it may
  add routes (`app.router.add_route`), `app.cleanup_ctx` entries (they run after the core's,
  so the database is migrated), and register handlers for messages addressed to the hub:
  `app[FEDERATION].register_handler(MessageType.AGGREGATE_RELEASE, handler)` where
  `async def handler(conn: AsyncConnection, opened: protocol.envelope.Opened) -> None`
  runs in the inbox's transaction (raise `FederationError(<wire code>)` to refuse);
- replace `app[AUTHORIZE]` (`(request, roles) -> role`) with the users module's session
  check; the default accepts only `Authorization: Bearer <PEERNET_HUB_OPERATOR_TOKEN>` as
  role `operator`;
- tables: `hub.db.TABLE_MODULES` and a migration branch off `0001_hub_core`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.client_address import TRUSTED_PROXIES, parse_trusted
from federation.clock import Clock, SystemClock
from federation.database import make_engine, migrate
from federation.errors import FedCode, FederationError, error_body
from federation.keystore import KeystoreError, NodeKeys
from federation.roster_acceptance import BoardPin
from federation.service import FederationService
from federation.sqlite_lock import RETRY_AFTER_S
from federation.websecurity import body_limit, security_headers
from hub import observe, openapi
from hub.appkeys import AUTHORIZE, CLOCK, DB, FEDERATION, KEYS, RELAY, SETTINGS
from hub.config import HubSettings
from hub.dashboard import pages as dashboard
from hub.db import Database
from hub.errors import Code, HubError
from hub.interstate import feature as interstate_feature
from hub.interstate.relay import InterstateRelay
from hub.national import feature as national_feature
from hub.oidc import feature as hub_oidc
from hub.relay import audit_anchors
from hub.relay.activation_log import list_entries, record_status, record_transfer
from hub.relay.directory import (
    directory_listing,
    find_foreign_rosters,
    network_listing,
)
from hub.relay.forwarding import Relay
from hub.stats import api as stats_api
from hub.stats import rounds_feature
from hub.users import accounts as users
from hub.users import pages as user_pages
from protocol.envelope import Opened
from protocol.errors import ProtocolError
from protocol.messages import BatchResult, MessageType

__all__ = ["FEATURES", "ROLES", "HubReceiver", "create_app", "load_keys"]

log = logging.getLogger("peernet.hub")

Setup = Callable[[web.Application], None]

# Feature setups run in this order after the core's; append yours here (one line).
FEATURES: list[Setup] = [observe.setup, stats_api.setup, users.setup, dashboard.setup,
                         openapi.setup, audit_anchors.setup, rounds_feature.setup]
FEATURES.append(user_pages.setup)  # hub user list, resets, own password (hub.users)
FEATURES.append(hub_oidc.setup)  # sign-in through the state's provider (hub.oidc)
FEATURES.append(national_feature.setup)  # national figures across the compact (hub.national)
FEATURES.append(interstate_feature.setup)  # compact, foreign rosters (hub.interstate)

ROLES = frozenset({"operator", "board_analyst"})
OPERATOR = frozenset({"operator"})
LOG_READERS = frozenset({"operator", "board_analyst"})


def load_keys(settings: HubSettings) -> NodeKeys:
    if settings.passphrase is None:
        raise HubError(Code.KEYS, "set PEERNET_HUB_PASSPHRASE to open the hub key file")
    try:
        return NodeKeys.load(settings.key_path, settings.passphrase.get_secret_value())
    except KeystoreError as exc:
        raise HubError(Code.KEYS, exc.message) from None


class HubReceiver:
    """Splits a batch: envelopes to the hub go to the inbox, the rest to the relay."""

    def __init__(self, me: str, fed: FederationService, relay: Relay) -> None:
        self.me = me
        self.fed = fed
        self.relay = relay

    async def receive(self, origin: str, items: list[object]) -> list[BatchResult]:
        # To the hub (`v: 2`: to the hub of this network): its inbox; the rest: the relay.
        ist = self.fed.interstate
        home = None if ist is None else ist.network_id
        mine = [i for i, it in enumerate(items) if isinstance(it, dict) and it.get("to") == self.me
                and it.get("to_network", home) == home]
        mine_set = set(mine)
        others = [i for i in range(len(items)) if i not in mine_set]
        out: list[BatchResult | None] = [None] * len(items)
        if mine:
            for i, r in zip(
                mine, await self.fed.inbox.receive(origin, [items[i] for i in mine]), strict=True
            ):
                out[i] = r
        if others:
            for i, r in zip(
                others, await self.relay.accept(origin, [items[i] for i in others]), strict=True
            ):
                out[i] = r
        else:
            await self.relay.peer_seen(origin)
        return [r for r in out if r is not None]


def _pin(settings: HubSettings) -> BoardPin | None:
    if not settings.board_keys:
        return None
    return BoardPin.from_strings(
        settings.board_keys, settings.board_threshold or len(settings.board_keys)
    )


def create_app(
    settings: HubSettings, *, clock: Clock | None = None, keys: NodeKeys | None = None
) -> web.Application:
    keys = keys or load_keys(settings)
    clock = clock or SystemClock()
    limit = body_limit(settings.max_body_bytes, exempt_prefix="/fed/")  # batches: own limit
    # Security headers outermost, so the JSON errors answered by the error middleware and
    # the body limit carry them too (they used to come only from the dashboard's, inside).
    app = web.Application(middlewares=[security_headers(), _error_middleware, limit],
                          client_max_size=settings.max_body_bytes)
    db = Database(make_engine(settings.db_url))
    fed = FederationService(
        me=settings.hub_id,
        keys=keys,
        engine=db.engine,
        write=db.write,
        clock=clock,
        pin=_pin(settings),
        is_hub=True,
        poll_ms=settings.relay_poll_ms,
        network_id=settings.network_id,
    )
    relay = InterstateRelay(
        interstate=lambda: fed.interstate,
        me=settings.hub_id,
        roster=fed.roster,
        write=db.write,
        clock=clock,
        client=lambda: fed.client,
        poll_ms=settings.relay_poll_ms,
    )
    fed.receiver = HubReceiver(settings.hub_id, fed, relay)

    async def on_status(conn: AsyncConnection, opened: Opened) -> None:
        # Interstate threads: names of this network are logged qualified (hub.relay).
        await record_status(conn, opened, received_ts=clock.now_ms(),
                            network_id=settings.network_id)

    fed.register_handler(MessageType.ACTIVATION_STATUS, on_status)
    fed.register_handler(MessageType.ACTIVATION_STATUSES, on_status)

    async def on_transfer(conn: AsyncConnection, opened: Opened) -> None:
        await record_transfer(conn, opened, received_ts=clock.now_ms())

    fed.register_handler(MessageType.FOLLOWUP_TRANSFER_STATUS, on_transfer)

    app[SETTINGS] = settings
    app[DB] = db
    app[CLOCK] = clock
    app[KEYS] = keys
    app[FEDERATION] = fed
    app[RELAY] = relay
    app[AUTHORIZE] = _token_authorize(settings)
    app[TRUSTED_PROXIES] = parse_trusted(settings.trusted_proxies)  # the throttle's address
    app.add_routes(fed.routes())
    app.add_routes(
        [
            web.get("/healthz", _healthz),
            web.get("/api/v1/directory", _directory),
            web.get("/api/v1/activation-log", _activation_log),
            web.get("/api/v1/relay/queue", _relay_queue),
            web.get("/api/v1/federation/alarms", _alarms),
            web.post("/api/v1/roster", _install_roster),
        ]
    )
    app.cleanup_ctx.append(_core_ctx)
    for setup in FEATURES:
        setup(app)
    return app


async def _core_ctx(app: web.Application) -> AsyncIterator[None]:
    db = app[DB]
    await migrate(db.engine, "hub:migrations")
    fed, relay = app[FEDERATION], app[RELAY]
    await fed.start()
    await relay.start()
    try:
        yield
    finally:
        await relay.stop()
        await fed.stop()
        await db.dispose()


def _token_authorize(settings: HubSettings) -> Any:
    async def authorize(request: web.Request, roles: frozenset[str]) -> str:
        token = settings.operator_token.get_secret_value() if settings.operator_token else None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if (
            not token
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(given.encode(), token.encode())
        ):
            raise HubError(Code.UNAUTHENTICATED, "send a valid operator token")
        if "operator" not in roles:
            raise HubError(Code.FORBIDDEN, "your role may not use this")
        return "operator"

    return authorize


@web.middleware
async def _error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except HubError as exc:
        return web.json_response(exc.body(), status=exc.status)
    except FederationError as exc:
        # busy: another process held SQLite's write lock; nothing was written, send it again
        headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.code == FedCode.BUSY else None
        return web.json_response(error_body(exc.code, exc.message, exc.field),
                                 status=exc.status, headers=headers)
    except web.HTTPNotFound:
        return web.json_response(error_body(Code.NOT_FOUND, "no such route"), status=404)
    except web.HTTPMethodNotAllowed:
        return web.json_response(
            error_body(Code.METHOD_NOT_ALLOWED, "method not allowed"), status=405
        )
    except web.HTTPRequestEntityTooLarge:
        return web.json_response(error_body(Code.TOO_LARGE, "request body too large"), status=413)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response(error_body(Code.INTERNAL, "internal error"), status=500)


def _int_query(
    request: web.Request, name: str, default: int | None, lo: int, hi: int
) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise HubError(Code.INVALID_INPUT, f"{name} must be an integer in [{lo}, {hi}]", name)
    return int(raw)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response(
        {"ok": True, "roster_version": request.app[FEDERATION].roster.state.version}
    )


async def _directory(request: web.Request) -> web.Response:
    q = request.query
    if q.get("network"):  # interstate: another member network's public directory
        fed = request.app[FEDERATION]
        try:
            listing = network_listing(
                find_foreign_rosters([fed, *request.app.values()]), fed.roster.state,
                q["network"], discipline=q.get("discipline") or None,
                region=q.get("region") or None, role=q.get("role") or "agency",
            )
        except ProtocolError as exc:
            raise FederationError(exc.code, exc.detail, "network") from None
        return web.json_response(listing)
    return web.json_response(
        directory_listing(
            request.app[FEDERATION].roster.state,
            discipline=q.get("discipline") or None,
            region=q.get("region") or None,
            role=q.get("role") or None,
        )
    )


async def _activation_log(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, LOG_READERS)
    q = request.query
    limit = _int_query(request, "limit", 200, 1, 1000) or 200
    since = _int_query(request, "since_ts", None, 0, 2**53 - 1)
    start = _int_query(request, "cursor", 0, 0, 10**18 - 1) or 0  # paging: hub.openapi
    async with request.app[DB].read() as conn:
        entries = await list_entries(
            conn,
            activation_id=q.get("activation_id") or None,
            node=q.get("node") or None,
            since_ts=since,
            limit=start + limit,
        )
    page = entries[start:]
    nxt = str(start + len(page)) if len(page) >= limit else None
    return web.json_response({"entries": page, "next_cursor": nxt})


async def _relay_queue(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, OPERATOR)
    return web.json_response({"queued": await request.app[RELAY].queue_counts()})


async def _alarms(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, OPERATOR)
    return web.json_response({"alarms": await request.app[FEDERATION].roster.list_alarms()})


async def _install_roster(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, OPERATOR)
    data = await request.read()
    fresh = await request.app[FEDERATION].roster.accept_document(data, source="operator")
    return web.json_response(
        {
            "accepted": [s.version for s in fresh],
            "version": request.app[FEDERATION].roster.state.version,
        }
    )
