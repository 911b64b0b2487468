"""The state board's dashboard: server-rendered pages over the hub's privacy-protected figures.

Pages (templates in `hub/templates/` over the shared web kit's, `federation.webkit`; the
kit's kit.css then `hub/static/hub.css`; no JavaScript):

- `GET /login`, `POST /login`, `POST /logout`: the kit's login flow (`hub.dashboard.login`:
  a pre-session cookie bound by `login_csrf`, logins throttled by `hub.users.accounts.login`);
- `GET /dashboard` (board_analyst, operator): encounters per month with 95% interval
  whiskers (all disciplines, then one small chart per discipline on a shared scale),
  referral and follow-up on-time rates per discipline with intervals, the nodes reporting
  and missing for the last complete month, the latest activation log entries, a filter form
  (month range, region, discipline) and a link to the same figures as CSV;
- `GET /dashboard/about`: what the numbers protect and what the intervals mean, in plain
  words for a state board;
- `GET /dashboard/activations` (board_analyst, operator): the central activation log;
- `GET /operator` (operator only): hub users, conflicting-release alarms, roster alarms (in
  words, each with an acknowledge form: `hub.dashboard.alarm_pages`) and the relay queue;
  `POST /operator/users` adds a user (CSRF checked by `app[AUTHORIZE]`).

Filters are validated strictly (`DashboardQuery`: unknown, repeated or malformed parameters
are a 400 `invalid_input` page naming the parameter). Errors on pages render `error.html`
with the stable code in `data-code`; an unauthenticated page request goes to `/login`.
Everything shown is a sum of noisy releases the hub received, or roster and activation-log
metadata: the hub has nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from federation.webkit.login import LoginFlow
from federation.webkit.pages import Site, error_response, favicon, setup_pages
from hub.appkeys import AUTHORIZE, CLOCK, DB, FEDERATION, RELAY, SETTINGS
from hub.dashboard.alarm_pages import ACK_PATH, ack_alarm, roster_alarm_rows
from hub.dashboard.charts import Point, interval_rows, interval_series, nice_top
from hub.dashboard.login import HubLogin
from hub.errors import Code, HubError
from hub.relay.activation_log import list_entries
from hub.stats.api import READERS, filter_from_query, list_alarms
from hub.stats.estimates import DISCIPLINES
from hub.stats.models import MONTH, parse_query
from hub.stats.query import load_month_sums, reported_nodes
from hub.stats.summary import summarise
from hub.users import accounts as users

__all__ = ["DashboardQuery", "LABELS", "setup"]

log = logging.getLogger("peernet.hub.dashboard")
HERE = Path(__file__).resolve().parent.parent  # hub/: templates and static
OPERATOR = frozenset({"operator"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LABELS: Mapping[str, str] = {
    "fire": "Fire", "ems": "EMS", "dispatch_911": "911 / Dispatch",
    "law_enforcement": "Law enforcement", "corrections": "Corrections", "other": "Other",
    "operator": "Operator", "board_analyst": "Board analyst",
}
_PAGE_PREFIXES = ("/login", "/logout", "/dashboard", "/operator", "/account")


class DashboardQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    month_from: Annotated[str | None, Field(pattern=MONTH)] = None
    month_to: Annotated[str | None, Field(pattern=MONTH)] = None
    region: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    discipline: Annotated[str | None, Field(pattern="^(" + "|".join(DISCIPLINES) + ")$")] = None


class _NoQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def label(value: Any) -> str:
    if value is None:
        return "—"
    return LABELS.get(value, value.replace("_", " ").capitalize())


def _month_name(month: Any) -> str:
    names = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")
    return f"{names[int(month[5:]) - 1]} {month[:4]}"


_FILTERS: dict[str, Callable[..., str]] = {}


def setup(app: web.Application) -> None:
    """Hub feature hook (after `hub.users.accounts.setup`, which provides the session check)."""
    setup_pages(app, "hub", Site(
        name=app[SETTINGS].name, stylesheet="/static/hub.css", home="/dashboard",
        home_label="Back to the statistics", skip_link=True, bad_request_heading=True,
        login_intro="Statewide peer support statistics, for the board and hub operators."),
        _FILTERS)
    app.middlewares.append(page_errors)  # inside create_app's security headers
    login = LoginFlow(HubLogin(render))
    app.router.add_static("/static/", HERE / "static", name="static")
    app.router.add_get("/", _home)
    app.router.add_get("/login", login.get)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_post("/login", login.post)
    app.router.add_post("/logout", login.logout)
    app.router.add_get("/dashboard", _dashboard)
    app.router.add_get("/dashboard/about", _about)
    app.router.add_get("/dashboard/activations", _activations)
    app.router.add_get("/operator", _operator)
    app.router.add_post("/operator/users", _add_user)
    app.router.add_post(ACK_PATH, ack_alarm)


def _ts(ms: Any) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime(
        "%Y-%m-%d %H:%M UTC")


_FILTERS.update({"label": label, "month_name": _month_name, "ts": _ts})


def _is_page(request: web.Request) -> bool:
    return request.path == "/" or request.path.startswith(_PAGE_PREFIXES)


@web.middleware
async def page_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HubErrors on pages become an HTML page (or a redirect to the login form)."""
    try:
        return await handler(request)
    except HubError as exc:
        if not _is_page(request):
            raise
        return error_response(request, exc, as_page=True,
                              unauthenticated=exc.code is Code.UNAUTHENTICATED, render=render)


def render(request: web.Request, template: str, context: Mapping[str, Any],
           status: int = 200) -> web.Response:
    p = request.get(users.PRINCIPAL)
    base = {
        "me": p,
        "csrf": p.csrf_token if p is not None else None,
        "hub_name": request.app[SETTINGS].name,
        "path": request.path,
        "is_operator": p is not None and p.role is users.HubRole.OPERATOR,
    }
    return aiohttp_jinja2.render_template(template, request, {**base, **context},
                                          status=status)


def _no_query(request: web.Request) -> None:
    parse_query(request.query, _NoQuery)


# --- home -------------------------------------------------------------------------------

async def _home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/dashboard")


# --- dashboard --------------------------------------------------------------------------

def _count_point(lbl: str, fig: Mapping[str, Any], reported: bool = True) -> Point:
    if not reported:
        return Point(lbl, None)
    d = fig["display"]
    return Point(lbl, float(d["estimate"]), float(d["interval"][0]), float(d["interval"][1]))


def _rate_point(lbl: str, fig: Mapping[str, Any] | None) -> Point:
    if fig is None:
        return Point(lbl, None)
    d = fig["display"]
    return Point(lbl, float(d["estimate"]), float(d["interval"][0]), float(d["interval"][1]))


def _csv_url(f: Any) -> str:
    params = {"month_from": f.month_from, "month_to": f.month_to}
    if f.region:
        params["region"] = f.region
    if f.disciplines:
        params["discipline"] = ",".join(f.disciplines)
    return "/api/v1/stats.csv?" + urlencode(params)


def encounters_label(cap: int | None) -> str:
    """Counts are truncated (each person counts at most `cap` encounters a month), so their
    intervals cover the truncated count, not every encounter logged: the label says so."""
    if cap is None:
        return "Encounters (capped per person-month)"
    return f"Encounters (at most {cap} per person-month)"


async def _dashboard(request: web.Request) -> web.Response:
    app = request.app
    await app[AUTHORIZE](request, READERS)
    q = parse_query(request.query, DashboardQuery)
    now = app[CLOCK].now_ms()
    f = filter_from_query(q.model_dump(exclude_none=True), now)
    latest = filter_from_query({}, now).month_to
    state = app[FEDERATION].roster.state
    async with app[DB].read() as conn:
        sums = await load_month_sums(conn, f)
        reported = await reported_nodes(conn, latest)
        entries = await list_entries(conn, limit=6)
    doc = summarise(sums, f.disciplines)
    discs = doc["disciplines"]
    months = doc["months"]

    cap = state.policy.privacy.per_person_month if state.current is not None else None
    enc_label = encounters_label(cap)
    total_chart = interval_series(
        [_count_point(m["month"], m["encounters"], m["nodes_reporting"] > 0) for m in months],
        f"{enc_label} per month, all selected disciplines, with 95% intervals")
    top = nice_top(max((m["by_discipline"][d]["display"]["interval"][1]
                        for m in months for d in discs), default=0))
    disc_charts = [
        (label(d), interval_series(
            [_count_point(m["month"], m["by_discipline"][d], m["nodes_reporting"] > 0)
             for m in months],
            f"{label(d)}: {enc_label.lower()} per month with 95% intervals", height=140,
            top=top))
        for d in discs
    ]
    per_disc = {d: summarise(sums, [d])["total"] for d in discs}
    total = doc["total"]
    referral_rows = interval_rows(
        [_rate_point("All selected", total["referral_rate"])]
        + [_rate_point(label(d), per_disc[d]["referral_rate"]) for d in discs],
        "Share of encounters with a referral, with 95% intervals")
    on_time_rows = interval_rows(
        [_rate_point("All selected", total["follow_up_on_time_rate"])]
        + [_rate_point(label(d), per_disc[d]["follow_up_on_time_rate"]) for d in discs],
        "Follow-ups done on time, with 95% intervals")

    agencies = []
    regions: list[str] = []
    if state.current is not None:
        everyone = [n for n in state.nodes() if not n.is_hub]
        regions = sorted({n.region for n in everyone})
        agencies = [n for n in everyone if f.region is None or n.region == f.region]
    reporting = [n for n in agencies if n.node_id in reported]
    missing = [n for n in agencies if n.node_id not in reported]
    return render(request, "dashboard.html", {
        "f": f, "q": q, "regions": regions,
        "discipline_choices": [(d, label(d)) for d in DISCIPLINES],
        "total": total, "months": months,
        "charts": {"total": total_chart, "disciplines": disc_charts,
                   "referral": referral_rows, "on_time": on_time_rows},
        "latest": latest, "reporting": reporting, "missing": missing,
        "entries": entries, "csv_url": _csv_url(f), "enc_label": enc_label,
        "nothing_reported": not any(m["nodes_reporting"] for m in months),
    })


async def _about(request: web.Request) -> web.Response:
    app = request.app
    await app[AUTHORIZE](request, READERS)
    _no_query(request)
    state = app[FEDERATION].roster.state
    policy = state.policy.privacy if state.current is not None else None
    return render(request, "about.html", {"policy": policy})


async def _activations(request: web.Request) -> web.Response:
    app = request.app
    await app[AUTHORIZE](request, READERS)
    _no_query(request)
    async with app[DB].read() as conn:
        entries = await list_entries(conn, limit=200)
    return render(request, "activations.html", {"entries": entries})


# --- operator ---------------------------------------------------------------------------

async def _operator_page(request: web.Request, error: HubError | None = None,
                         notice: str | None = None, status: int = 200) -> web.Response:
    app = request.app
    return render(request, "operator.html", {
        "users": await users.list_users(app[DB]),
        "alarms": await list_alarms(app, limit=50),
        "roster_alarms": await roster_alarm_rows(app),
        "queue": await app[RELAY].queue_counts(),
        "roles": [(r.value, label(r.value)) for r in users.HubRole],
        "error": error, "notice": notice,
    }, status=status)


async def _operator(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, OPERATOR)
    _no_query(request)
    return await _operator_page(request)


async def _add_user(request: web.Request) -> web.Response:
    app = request.app
    await app[AUTHORIZE](request, OPERATOR)
    form = await request.post()
    allowed = {"csrf", "username", "password", "role"}
    unknown = sorted(set(form.keys()) - allowed)
    if unknown:
        raise HubError(Code.INVALID_INPUT, f"unknown field {unknown[0]}", unknown[0])
    values = {k: form.get(k) for k in ("username", "password", "role")}
    if not all(isinstance(v, str) for v in values.values()):
        raise HubError(Code.INVALID_INPUT, "username, password and role are required")
    try:
        made = await users.create_user(
            app[DB], app[users.HASHER], username=str(values["username"]),
            password=str(values["password"]), role=str(values["role"]),
            now_ms=app[CLOCK].now_ms())
    except HubError as exc:
        if exc.code in (Code.INVALID_INPUT, Code.CONFLICT):
            return await _operator_page(request, error=exc, status=exc.status)
        raise
    return await _operator_page(request, notice=f"Added {made['username']} "
                                f"({label(made['role'])}).")
