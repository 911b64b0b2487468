"""`create_app(settings, *, clock=None, keys=None)`: the helper aggregator's aiohttp application.

Wiring, as on the hub (`hub.app`): the database (`helper.db`, migrated to all heads on
start) and a `federation.service.FederationService` (roster fetched from `hub_url`, inbox,
outbox, acks) with two handlers: `aggregate_share` stores a share, `aggregate_round` answers
with an `aggregate_result` to the hub that sent it, queued in the inbox's transaction
(`helper.store`). The noise comes from the current roster policy
(`federation.aggregate_noise`).

Routes:
- `PUT /fed/v1/send/{txn_id}` (per-hop signed), `GET /fed/v1/roster[/{version}]`;
- `GET /healthz`;
- `GET /api/v1/status` (`Authorization: Bearer <PEERNET_HELPER_OPERATOR_TOKEN>`): shares
  held per month, groups answered, queued messages. Counts only: never a share.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.aggregate_noise import AggregateNoise, calibrate
from federation.clock import Clock, SystemClock
from federation.database import make_engine, migrate
from federation.errors import FederationError, error_body
from federation.keystore import KeystoreError, NodeKeys
from federation.observe.hub_probe import HubProbe
from federation.roster_acceptance import BoardPin
from federation.service import FederationService
from federation.websecurity import body_limit, security_headers
from helper import observe
from helper.config import HelperSettings
from helper.db import Database
from helper.errors import Code, HelperError
from helper.store import HelperAnswer, HelperShare, accept_share, answer_round
from protocol.envelope import Opened
from protocol.messages import MessageType

__all__ = ["CLOCK", "DB", "FEDERATION", "SETTINGS", "create_app", "load_keys", "policy_noise"]

log = logging.getLogger("peernet.helper")

SETTINGS = web.AppKey("peernet_helper_settings", HelperSettings)
DB = web.AppKey("peernet_helper_db", Database)
CLOCK = web.AppKey("peernet_helper_clock", Clock)
FEDERATION = web.AppKey("peernet_helper_federation", FederationService)
HUB_PROBE = web.AppKey("peernet_helper_hub_probe", HubProbe)


def load_keys(settings: HelperSettings) -> NodeKeys:
    if settings.passphrase is None:
        raise HelperError(Code.KEYS, "set PEERNET_HELPER_PASSPHRASE to open the key file")
    try:
        return NodeKeys.load(settings.key_path, settings.passphrase.get_secret_value())
    except KeystoreError as exc:
        raise HelperError(Code.KEYS, exc.message) from None


def policy_noise(fed: FederationService) -> AggregateNoise:
    """One aggregator's per-group noise under the current roster's privacy policy."""
    p = fed.roster.state.policy.privacy
    return calibrate(p.measure, p.budget_per_node_year, p.workload_weights,
                     p.per_person_month, p.per_cell)


def create_app(
    settings: HelperSettings, *, clock: Clock | None = None, keys: NodeKeys | None = None
) -> web.Application:
    keys = keys or load_keys(settings)
    clock = clock or SystemClock()
    app = web.Application(
        middlewares=[security_headers(), _error_middleware,
                     body_limit(settings.max_body_bytes, exempt_prefix="/fed/")],
        client_max_size=settings.max_body_bytes)
    db = Database(make_engine(settings.db_url))
    pin = (BoardPin.from_strings(settings.board_keys,
                                 settings.board_threshold or len(settings.board_keys))
           if settings.board_keys else None)
    fed = FederationService(
        me=settings.helper_id, keys=keys, engine=db.engine, write=db.write, clock=clock,
        pin=pin, hub_url=settings.hub_url or None, poll_ms=settings.poll_ms,
    )

    async def on_share(conn: AsyncConnection, opened: Opened) -> None:
        await accept_share(conn, opened.body_json, sender=opened.outer.from_,
                           msg_id=opened.inner.msg_id, state=fed.roster.state,
                           me=settings.helper_id, now_ms=clock.now_ms())

    async def on_round(conn: AsyncConnection, opened: Opened) -> None:
        hub = opened.outer.from_
        result = await answer_round(conn, opened.body_json, sender=hub,
                                    state=fed.roster.state, noise=policy_noise(fed),
                                    now_ms=clock.now_ms())
        await fed.send(conn, hub, MessageType.AGGREGATE_RESULT, result,
                       in_reply_to=opened.inner.msg_id)

    fed.register_handler(MessageType.AGGREGATE_SHARE, on_share)
    fed.register_handler(MessageType.AGGREGATE_ROUND, on_round)
    app[SETTINGS] = settings
    app[DB] = db
    app[CLOCK] = clock
    app[FEDERATION] = fed
    app[HUB_PROBE] = observe.setup(app, settings, db, fed, clock)
    app.add_routes(fed.routes())
    app.add_routes([web.get("/healthz", _healthz), web.get("/api/v1/status", _status)])
    app.cleanup_ctx.append(_core_ctx)
    return app


async def _core_ctx(app: web.Application) -> AsyncIterator[None]:
    db = app[DB]
    await migrate(db.engine, "helper:migrations")
    fed = app[FEDERATION]
    await fed.start()
    try:
        yield
    finally:
        await fed.stop()
        await db.dispose()


def _authorize(request: web.Request) -> None:
    settings = request.app[SETTINGS]
    token = settings.operator_token.get_secret_value() if settings.operator_token else None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if (not token or scheme.lower() != "bearer"
            or not hmac.compare_digest(given.encode(), token.encode())):
        raise HelperError(Code.UNAUTHENTICATED, "send a valid operator token")


async def _healthz(request: web.Request) -> web.Response:
    hub = await request.app[HUB_PROBE].check()
    return web.json_response({
        "ok": True, "roster_version": request.app[FEDERATION].roster.state.version,
        "hub": {"configured": hub.configured, "reachable": hub.reachable,
                "last_contact_ms": hub.last_ok_ms}})


async def _status(request: web.Request) -> web.Response:
    _authorize(request)
    async with request.app[DB].read() as conn:
        held = {r[0]: int(r[1]) for r in await conn.execute(
            select(HelperShare.month, func.count()).group_by(HelperShare.month))}
        answered = {r[0]: int(r[1]) for r in await conn.execute(
            select(HelperAnswer.month, func.count()).group_by(HelperAnswer.month))}
    return web.json_response({
        "shares": held, "groups_answered": answered,
        "outbox": await request.app[FEDERATION].outbox_counts(),
    })


@web.middleware
async def _error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except HelperError as exc:
        return web.json_response(exc.body(), status=exc.status)
    except FederationError as exc:
        return web.json_response(error_body(exc.code, exc.message, exc.field), status=exc.status)
    except web.HTTPNotFound:
        return web.json_response(error_body(Code.NOT_FOUND, "no such route"), status=404)
    except web.HTTPMethodNotAllowed:
        return web.json_response(
            error_body(Code.METHOD_NOT_ALLOWED, "method not allowed"), status=405)
    except web.HTTPRequestEntityTooLarge:
        return web.json_response(error_body(Code.TOO_LARGE, "request body too large"), status=413)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response(error_body(Code.INTERNAL, "internal error"), status=500)
