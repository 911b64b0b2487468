"""The hub's OpenAPI 3.1 document, served at `GET /api/v1/openapi.json` (public).

Built with the node's builder (`federation.openapi.build_document`) from the same pydantic
models the handlers validate with (`hub.stats.models`), so the document names exactly the
query parameters the server accepts: anything else is a 400 `invalid_input`. Only the hub's
own JSON API is described; the federation transport (`/fed/v1/...`) has its wire format in
DESIGN section 4, and the pages are for browsers.

Every error response names the hub's stable codes (`hub.errors.HTTP_STATUS`: the
`ErrorCode` enum); the activation log and the release alarms follow the node's paging
convention (`limit` + `cursor`, answered with `next_cursor`; the alarms keep their `alarms`
key for older clients). The shared-aggregation operator routes (`hub.stats.rounds_feature`)
are tagged `shared-aggregation`. tests/openapi/hub-v1.json is the published copy: a
test fails when an operation, parameter or field of it disappears.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from federation.openapi import PAGING_TEXT, Operation, build_document
from hub.errors import HTTP_STATUS
from hub.national.models import NationalDocument, NationalQuery, RefreshOut
from hub.stats.models import (
    MONTH,
    ActivationLogQuery,
    AggregateAlarmsOut,
    AggregateAlarmsQuery,
    StatsDocument,
    StatsQuery,
)
from hub.stats.rounds_models import RoundStartedOut, SharedFiguresOut, SharedFiguresQuery

__all__ = ["OPERATIONS", "ActivationLogEntry", "ActivationLogOut", "hub_document", "setup"]

_DOC = web.AppKey("peernet_hub_openapi", dict[str, Any])


class _LogCounts(BaseModel):
    affected: int
    peers_needed: int
    peers_offered: int


class ActivationLogEntry(BaseModel):
    """One status report of the central activation log: metadata only, no contents."""

    activation_id: str
    requester: str
    responder: str | None
    state: str
    incident_type: str
    counts: _LogCounts
    ts: int
    reported_by: str
    msg_id: str
    received_ts: int


class ActivationLogOut(BaseModel):
    entries: list[ActivationLogEntry]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null: no more pages")


_E = (400, 401, 403, 413, 500)


class CompactInstalledOut(BaseModel):
    accepted: list[int] = Field(description="Versions newly accepted (empty: held already)")
    version: int = Field(description="The compact version now current")


class InterstateMember(BaseModel):
    network_id: str
    name: str
    hub_id: str
    roster_version: int | None = Field(
        description="Version of its roster held (0: none yet); null for this network")


class InterstateOut(BaseModel):
    network_id: str
    compact_version: int = Field(description="0 when no compact is held")
    members: list[InterstateMember]
    queued: dict[str, int] = Field(description="Relay rows waiting per destination network")


OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/v1/stats", "getStats",
              "Statistics with 95% intervals from the releases received (operator, "
              "board_analyst)", query=StatsQuery, response=StatsDocument, tags=("stats",),
              errors=_E),
    Operation("GET", "/api/v1/stats.csv", "getStatsCsv",
              "The same figures as CSV: month, metric, estimate, low_95, high_95, "
              "nodes_reporting (operator, board_analyst)", query=StatsQuery,
              tags=("stats",), errors=_E),
    Operation("GET", "/api/v1/stats/alarms", "getReleaseAlarms",
              "Conflicting-release alarms (operator)", query=AggregateAlarmsQuery,
              response=AggregateAlarmsOut, tags=("stats",), errors=_E,
              description=PAGING_TEXT + "newest alarm first. The list is under `alarms`."),
    Operation("POST", "/api/v1/rounds/{month}", "startSharedRound",
              "Start the month's shared-aggregation round now (operator)",
              response=RoundStartedOut, tags=("shared-aggregation",), errors=_E,
              path_params={"month": {"type": "string", "pattern": MONTH,
                                     "description": "The month (YYYY-MM)"}},
              description="Sends the month's round to the roster policy's helper. No "
                          "request body. The hub also starts due rounds by itself."),
    Operation("GET", "/api/v1/shared-figures", "getSharedFigures",
              "Published region-months of shared aggregation with per-key variances "
              "(operator, board_analyst)", query=SharedFiguresQuery,
              response=SharedFiguresOut, tags=("shared-aggregation",), errors=_E,
              description="Ordered by month, then region."),
    Operation("GET", "/api/v1/activation-log", "getActivationLog",
              "The central activation log, newest first (operator, board_analyst)",
              query=ActivationLogQuery, response=ActivationLogOut, tags=("activations",),
              description=PAGING_TEXT + "newest status first.", errors=_E),
    Operation("GET", "/api/v1/national", "getNationalFigures",
              "National figures: the member states' published figures summed, with 95% "
              "intervals and the states reporting and missing per month (operator, "
              "board_analyst)", query=NationalQuery, response=NationalDocument,
              tags=("national",), errors=_E,
              description="Post-processing of figures already released: no budget is "
                          "spent. Peers' figures are those last fetched and verified."),
    Operation("POST", "/api/v1/national/refresh", "refreshNationalFigures",
              "Fetch and verify every member state's signed statistics now (operator)",
              query=NationalQuery, response=RefreshOut, tags=("national",), errors=_E,
              description="No request body. Each peer's outcome: stored, refused (with "
                          "the wire code) or unreachable; nothing of a refused one is kept."),
    Operation("POST", "/api/v1/compact", "installCompact",
              "Install a signed interstate compact version (operator)",
              response=CompactInstalledOut, tags=("interstate",), errors=(*_E, 409, 422, 503),
              description="The request body is the signed compact document (WIRE section "
                          "16.2) as the boards produced it. It must pass the acceptance "
                          "rules (every member's threshold, this network's pinned board, "
                          "the chain); nothing is stored otherwise. The member networks' "
                          "rosters are then fetched in the background."),
    Operation("GET", "/api/v1/interstate", "getInterstate",
              "This hub's compact: version, members and the foreign roster versions held, "
              "and interstate messages queued per network (operator)",
              response=InterstateOut, tags=("interstate",), errors=_E),
    Operation("GET", "/api/v1/openapi.json", "getOpenApi", "This document", secured=False,
              tags=("meta",), errors=()),
)


def hub_document() -> dict[str, Any]:
    doc = build_document(
        "peernet hub API", "1",
        OPERATIONS,
        description="Privacy-protected statewide statistics and the central activation "
                    "log. Authenticate with `Authorization: Bearer <token>` (an API token "
                    "from `peernet hub user token`) or a browser session.",
        cookie_name="peernet_hub_session",
        error_status={code.value: status for code, status in HTTP_STATUS.items()},
    )
    csv_ok = doc["paths"]["/api/v1/stats.csv"]["get"]["responses"]["200"]
    csv_ok["content"] = {"text/csv": {"schema": {"type": "string"}}}
    doc["paths"]["/api/v1/openapi.json"]["get"]["responses"]["200"]["content"] = {
        "application/json": {"schema": {"type": "object"}}}
    return doc


async def _openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[_DOC])


def setup(app: web.Application) -> None:
    app[_DOC] = hub_document()
    app.router.add_get("/api/v1/openapi.json", _openapi_json)
