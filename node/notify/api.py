"""JSON API of notifications (in the node's OpenAPI document through the route table).

    GET  /api/v1/notify/preferences            own preferences (every role)
    PUT  /api/v1/notify/preferences            set them (a new webhook secret is answered once)
    GET  /api/v1/notify/deliveries             the queue and its failures (admin)
    POST /api/v1/notify/deliveries/{id}/retry  one more attempt now (admin)
    GET  /api/v1/notify/endpoints              the on-duty list (admin)
    POST /api/v1/notify/endpoints              add a mailbox or webhook (secret answered once)
    POST /api/v1/notify/endpoints/{id}/remove  take one off the list (admin)
"""

from __future__ import annotations

import uuid

from aiohttp import web
from pydantic import BaseModel

from node.core.context import NodeContext
from node.core.paging import offset_of, page_of
from node.core.routes import ALL_ROLES, Route
from node.core.vocabulary import Role
from node.notify import admin, prefs
from node.notify.errors import NotifyCode, NotifyError
from node.notify.models import (
    DeliveryList,
    EndpointIn,
    EndpointList,
    EndpointOut,
    ListQuery,
    PrefsIn,
    PrefsOut,
    RetryOut,
    StateQuery,
)
from node.notify.runtime import NOTIFIER
from node.web.api import query_params
from node.web.plumbing import json_body, principal

__all__ = ["api_routes", "path_id"]

P = "/api/v1/notify"
ADMIN = frozenset({Role.ADMIN})


def path_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NotifyError(NotifyCode.NOT_FOUND, "no such record", "id") from None


def _dump(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(body=model.model_dump_json().encode(), status=status,
                        content_type="application/json")


def kick(request: web.Request) -> None:
    if NOTIFIER in request.app:
        request.app[NOTIFIER].kick()


async def prefs_get(request: web.Request) -> web.Response:
    ctx = NodeContext.of(request.app)
    return _dump(await prefs.get_prefs(ctx, principal(request).user_id))


async def prefs_put(request: web.Request) -> web.Response:
    data = await json_body(request, PrefsIn)
    return _dump(await prefs.set_prefs(NodeContext.of(request.app), principal(request), data))


async def deliveries(request: web.Request) -> web.Response:
    q = query_params(request, StateQuery)
    items = await admin.deliveries(NodeContext.of(request.app), q.state,
                                   offset_of(q.cursor) + q.limit)
    page, nxt = page_of(items, q.cursor, q.limit)
    return _dump(DeliveryList(items=page, next_cursor=nxt))


async def retry(request: web.Request) -> web.Response:
    out = await admin.retry(NodeContext.of(request.app), principal(request), path_id(request))
    kick(request)
    return _dump(out)


async def endpoints(request: web.Request) -> web.Response:
    q = query_params(request, ListQuery)
    items = await admin.endpoints(NodeContext.of(request.app))
    page, nxt = page_of(items, q.cursor, q.limit)
    return _dump(EndpointList(items=page, next_cursor=nxt))


async def endpoint_add(request: web.Request) -> web.Response:
    data = await json_body(request, EndpointIn)
    out = await admin.add_endpoint(NodeContext.of(request.app), principal(request), data)
    return _dump(out, 201)


async def endpoint_remove(request: web.Request) -> web.Response:
    await admin.remove_endpoint(NodeContext.of(request.app), principal(request),
                                path_id(request))
    return web.Response(status=204)


def api_routes() -> list[Route]:
    t = ("notifications",)
    return [
        Route("GET", f"{P}/preferences", prefs_get, "api.notify.prefs", ALL_ROLES,
              "Own notification preferences", response=PrefsOut, tags=t),
        Route("PUT", f"{P}/preferences", prefs_put, "api.notify.prefs.set", ALL_ROLES,
              "Set own notification preferences", body=PrefsIn, response=PrefsOut, tags=t),
        Route("GET", f"{P}/deliveries", deliveries, "api.notify.deliveries", ADMIN,
              "Notification deliveries and failures", query=StateQuery,
              response=DeliveryList, tags=t),
        Route("POST", f"{P}/deliveries/{{id}}/retry", retry, "api.notify.retry", ADMIN,
              "Retry a failing delivery now", response=RetryOut, tags=t),
        Route("GET", f"{P}/endpoints", endpoints, "api.notify.endpoints", ADMIN,
              "The on-duty list", query=ListQuery, response=EndpointList, tags=t),
        Route("POST", f"{P}/endpoints", endpoint_add, "api.notify.endpoints.add", ADMIN,
              "Add a mailbox or webhook to the on-duty list", body=EndpointIn,
              response=EndpointOut, status=201, tags=t),
        Route("POST", f"{P}/endpoints/{{id}}/remove", endpoint_remove,
              "api.notify.endpoints.remove", ADMIN, "Remove from the on-duty list",
              status=204, tags=t),
    ]
