"""The node's OpenAPI 3.1 document, served at `GET /api/v1/openapi.json` (public).

Built by `federation.openapi.build_document` from the route table (`node.core.routes`), so
every API route of every feature is in it with the models its handler validates with. This
module adds what the route table does not hold: the stable error codes with their HTTP
statuses (the node's and the activation feature's tables: the `ErrorCode` enum), an example
body for every operation that takes one (`node.web.openapi_examples`, each checked against
its model by the tests), and for list operations the paging convention and their fixed
order (`node.core.paging`).

The document is built once, on the first request, when every feature has added its routes.
Compatibility: tests/openapi/node-v1.json is the published copy; a test fails when an
operation, parameter or field of it disappears (see README, "Integrating with the API").
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from federation.openapi import PAGING_TEXT, Operation, build_document
from node.activation.errors import HTTP_STATUS as ACTIVATION_STATUS
from node.core.appkeys import ROUTES, SETTINGS
from node.core.errors import HTTP_STATUS as NODE_STATUS
from node.core.routes import Route
from node.notify.errors import HTTP_STATUS as NOTIFY_STATUS
from node.web.openapi_examples import BODY_EXAMPLES

__all__ = ["LIST_ORDER", "error_status", "init", "openapi_document"]

_OPENAPI = web.AppKey("peernet_openapi", dict[str, Any])

# The fixed order of each list operation (route name -> words), written into its description.
LIST_ORDER: dict[str, str] = {
    "api.encounters.list": "newest occurred_at first",
    "api.follow_ups.list": "earliest due first",
    "api.users.list": "by username",
    "api.tokens.list": "by username, then oldest first",
    "api.sessions.list": "most recently used first",
    "api.disclosures.list": "newest occurred_on first",
    "api.audit.list": "by seq, oldest first",
    "api.activations.list": "newest first",
    "api.activations.targets": "roster order",
    "api.activations.interstate.directory": "roster order",
    "api.activations.handoffs": "earliest due first",
    "api.transfers.list": "newest first",
    "api.notify.deliveries": "not yet sent first, most attempts first, then newest first",
    "api.notify.endpoints": "oldest first",
}

# Every route may answer these (plus 401 when it needs a login); 405/429 are page-only.
_ERRORS = (400, 401, 403, 404, 409, 413, 422, 500, 503)


def error_status() -> dict[str, int]:
    """Every stable code an API route can answer with, and its HTTP status."""
    out = {code.value: status for code, status in NODE_STATUS.items()}
    out.update({code.value: status for code, status in ACTIVATION_STATUS.items()})
    out.update({code.value: status for code, status in NOTIFY_STATUS.items()})
    return out


def _operation(r: Route) -> Operation:
    order = LIST_ORDER.get(r.name)
    return Operation(
        method=r.method, path=r.path, operation_id=r.name, summary=r.summary,
        description=PAGING_TEXT + order + "." if order else "",
        query=r.query, body=r.body, response=r.response, status=r.status,
        secured=r.roles is not None, tags=r.tags,
        path_params={"id": {"type": "string", "format": "uuid"}},
        errors=_ERRORS if r.roles is not None else (),
        body_example=BODY_EXAMPLES.get(r.name),
    )


def openapi_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every API route in the app's route table (cached)."""
    cache = app[_OPENAPI]
    if not cache:
        doc = build_document(
            f"peernet node {app[SETTINGS].node_id}", "1",
            [_operation(r) for r in app[ROUTES] if r.is_api],
            description="Agency node API: encounters, follow-ups, users, disclosures, "
            "audit, agency report, interagency activations. Authenticate with "
            "`Authorization: Bearer <token>` (`peernet node token create`). Within /api/v1 "
            "the API only grows; see the README, \"Integrating with the API\".",
            error_status=error_status(),
        )
        meta = doc["paths"]["/api/v1/openapi.json"]["get"]["responses"]["200"]
        meta["content"] = {"application/json": {"schema": {"type": "object"}}}
        cache.update(doc)
    return cache


def init(app: web.Application) -> None:
    app[_OPENAPI] = {}  # filled on first request, once every feature has added its routes
