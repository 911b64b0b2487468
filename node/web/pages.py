"""Server-rendered pages (aiohttp-jinja2, templates in node/web/templates/, one CSS file).

Every form works without JavaScript and carries the session's CSRF token (`csrf` hidden
field); the login form is bound to a pre-session cookie instead. Pages call the same services
as the JSON API, so record rules and audit entries are identical. Made for a phone, right
after a bad call: one column, big touch targets, calm colours, the common choices preselected
so logging an encounter takes a few taps.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from federation.field_errors import field_label
from federation.webkit.pages import favicon
from node.accounts import pages as account_pages
from node.accounts import users as accounts
from node.activation import transfer
from node.activation.api import ACTIVATIONS
from node.core.appkeys import THROTTLE
from node.core.context import NodeContext
from node.core.errors import Code, NodeError
from node.core.routes import ALL_ROLES, NavItem, Route, add_nav, add_routes
from node.core.schemas import (
    EncounterIn,
    IncidentRef,
    Password,
    RecipientInput,
    Team,
    UserIn,
    Username,
    UserPatch,
)
from node.core.vocabulary import (
    ActivationType,
    DurationBucket,
    FollowUpStatus,
    Intervention,
    RecipientCategory,
    RecipientDiscipline,
    Referral,
    Role,
    Topic,
)
from node.records import encounters, followup_paging, followups, report
from node.records.encounter_paging import (
    PAGE_SIZE,
    EncounterFilter,
    count_encounters,
    encounter_where,
    page_of,
    requested_page,
)
from node.records.list_filters import query_string
from node.records.list_pages import query_model
from node.web.charts import hbars, month_bars
from node.web.login import LOGIN
from node.web.plumbing import form_body, principal, render

__all__ = ["setup"]

SUPPORTERS = frozenset({Role.PEER_SUPPORTER, Role.COORDINATOR})
COORDINATOR = frozenset({Role.COORDINATOR})
ADMIN = frozenset({Role.ADMIN})
REPORT_READERS = frozenset({Role.COORDINATOR, Role.AUDITOR})

LABELS: dict[str, str] = {
    "self": "Self", "supervisor": "Supervisor", "post_critical_incident": "After critical incident",
    "peer_outreach": "Peer outreach", "interagency": "Interagency",
    "one_on_one": "One-on-one", "defusing": "Defusing", "debriefing": "Debriefing",
    "demobilization": "Demobilization", "family_support": "Family support",
    "follow_up": "Follow-up", "fire": "Fire", "ems": "EMS", "dispatch_911": "911 / Dispatch",
    "law_enforcement": "Law enforcement", "corrections": "Corrections", "other": "Other",
    "own_agency": "Own agency", "other_agency": "Other agency", "family": "Family",
    "other_staff": "Other staff", "work_stress": "Work stress",
    "critical_incident": "Critical incident", "finances": "Finances", "health": "Health",
    "substance_use": "Substance use", "grief": "Grief", "undisclosed": "Not disclosed",
    "eap": "EAP", "clinician": "Clinician", "chaplain": "Chaplain",
    "crisis_line": "Crisis line", "none": "None", "open": "Open", "done": "Done",
    "overdue": "Overdue", "handed_off": "Handed off", "transferred": "Transferred",
    "peer_supporter": "Peer supporter",
    "coordinator": "Coordinator", "admin": "Admin", "auditor": "Auditor",
    "<15m": "< 15 min", "15-30m": "15–30 min", "30-60m": "30–60 min", "1-2h": "1–2 h",
    ">2h": "> 2 h",
}


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EncounterForm(_Form):
    occurred_at: datetime  # datetime-local, in the node's time zone
    duration_bucket: DurationBucket
    activation_type: ActivationType
    intervention: Intervention
    recipient_discipline: RecipientDiscipline
    recipient_category: RecipientCategory
    recipient: RecipientInput
    topics: list[Topic] = []
    referral: Referral | Literal["none"] = "none"
    incident_ref: IncidentRef | None = None
    follow_up_in: Literal["none", "1", "3", "7"] = "none"
    notice_given: bool = False
    supporter_was_witness: bool = False


class CompleteForm(_Form):
    outcome: Literal["done", "handed_off"] = "done"


class ReassignForm(_Form):
    owner: uuid.UUID
    due: date | None = None


class NewUserForm(_Form):
    username: Username
    password: Password
    role: Role
    team: Team = "main"


class UserChangeForm(_Form):
    role: Role | None = None
    active: Literal["yes", "no"] | None = None


def _ctx(request: web.Request) -> NodeContext:
    return NodeContext.of(request.app)


def _see_other(path: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(path)


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(m.value, LABELS.get(m.value, m.value)) for m in enum]


# --- home -------------------------------------------------------------------------------

async def home(request: web.Request) -> web.Response:
    p = principal(request)
    target = {Role.ADMIN: "/admin/users", Role.AUDITOR: "/leadership"}.get(p.role,
                                                                          "/encounters/new")
    raise _see_other(target)


# --- encounters -------------------------------------------------------------------------

def _encounter_form_page(request: web.Request, values: dict[str, Any],
                         error: NodeError | None = None) -> web.Response:
    ctx = _ctx(request)
    now_local = datetime.fromtimestamp(ctx.now() / 1000, ctx.zone)
    disciplines = ctx.settings.disciplines
    defaults: dict[str, Any] = {
        "occurred_at": now_local.strftime("%Y-%m-%dT%H:%M"),
        "duration_bucket": DurationBucket.M15_30.value,
        "activation_type": ActivationType.SELF.value,
        "intervention": Intervention.ONE_ON_ONE.value,
        "recipient_discipline": (disciplines[0] if disciplines
                                 else RecipientDiscipline.FIRE).value,
        "recipient_category": RecipientCategory.OWN_AGENCY.value,
        "topics": [], "referral": "none", "incident_ref": "", "follow_up_in": "3",
        "notice_given": False, "supporter_was_witness": False,
    }
    defaults.update(values)
    return render(request, "encounter_new.html", {
        "v": defaults, "error": error, "labels": LABELS,
        "durations": _choices(DurationBucket), "activations": _choices(ActivationType),
        "interventions": _choices(Intervention), "disciplines": _choices(RecipientDiscipline),
        "categories": _choices(RecipientCategory), "topics": _choices(Topic),
        "referrals": [("none", "None"), *_choices(Referral)],
        "follow_ups": [("none", "None"), ("1", "Tomorrow"), ("3", "In 3 days"),
                       ("7", "In a week")],
    }, status=422 if error else 200)


async def encounter_new(request: web.Request) -> web.Response:
    return _encounter_form_page(request, {})


async def encounter_post(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    p = principal(request)
    raw = await request.post()
    fields = ("occurred_at", "duration_bucket", "activation_type", "intervention",
              "recipient_discipline", "recipient_category", "referral", "incident_ref",
              "follow_up_in")
    kept: dict[str, Any] = {k: raw.get(k) for k in fields}
    kept["topics"] = list(raw.getall("topics")) if "topics" in raw else []
    kept["notice_given"] = raw.get("notice_given") == "on"
    kept["supporter_was_witness"] = raw.get("supporter_was_witness") == "on"
    values = {k: v for k, v in kept.items() if v is not None}
    try:
        form = await form_body(request, EncounterForm, lists=("topics",))
        occurred = form.occurred_at
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=ctx.zone)
        due = None
        if form.follow_up_in != "none":
            due = occurred.astimezone(ctx.zone).date() + timedelta(days=int(form.follow_up_in))
        data = EncounterIn(
            occurred_at=occurred, duration_bucket=form.duration_bucket,
            incident_ref=form.incident_ref, activation_type=form.activation_type,
            intervention=form.intervention, recipient_discipline=form.recipient_discipline,
            recipient_category=form.recipient_category, recipient=form.recipient,
            topics=set(form.topics),
            referral=None if form.referral == "none" else Referral(form.referral),
            follow_up_due=due, notice_given=form.notice_given,
            supporter_was_witness=form.supporter_was_witness,
        )
        out = await encounters.create_encounter(ctx, p, data)
    except NodeError as exc:
        if exc.status == 422:
            return _encounter_form_page(request, values, exc)
        raise
    raise _see_other(f"/encounters/{out.id}?logged=1")


async def encounter_list(request: web.Request) -> web.Response:
    ctx, p = _ctx(request), principal(request)
    requested_page(request.query)
    f = query_model(request, EncounterFilter)
    where = encounter_where(ctx, f.since, f.until, f.status, f.discipline)
    page = page_of(f.page, await count_encounters(ctx, p, "mine", where))
    items = await encounters.list_encounters(ctx, p, "mine", page.size, page.offset, where)
    return render(request, "encounters.html", {
        "items": items, "labels": LABELS, "page": page, "f": f,
        "qs": lambda **kw: query_string(f, **kw), "statuses": _choices(FollowUpStatus),
        "disciplines": _choices(RecipientDiscipline)})


async def encounter_view(request: web.Request) -> web.Response:
    try:
        eid = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NodeError(Code.NOT_FOUND, "no such encounter") from None
    item = await encounters.get_encounter(_ctx(request), principal(request), eid)
    return render(request, "encounter.html", {"e": item, "labels": LABELS,
                                              "logged": "logged" in request.query,
                                              "amended": "amended" in request.query,
                                              "field_label": field_label})


# --- follow-ups -------------------------------------------------------------------------

async def follow_up_list(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    items = await followups.list_follow_ups(ctx, principal(request), "mine")
    today = ctx.today()
    due = [f for f in items if f.status.value in ("open", "overdue") and f.due <= today]
    later = [f for f in items if f.status.value == "open" and f.due > today]
    async with ctx.db.read() as conn:
        transferred = await transfer.owned_transfers(conn, principal(request).user_id)
    return render(request, "follow_ups.html", {"due": due, "later": later, "labels": LABELS,
                                               "transferred": transferred})


async def follow_up_complete(request: web.Request) -> web.Response:
    form = await form_body(request, CompleteForm)
    fid = _uuid(request)
    await followups.complete(_ctx(request), principal(request), fid, form.outcome)
    raise _see_other(request.headers.get("X-Back", "/follow-ups"))


async def team_view(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    p = principal(request)
    requested_page(request.query)
    f = query_model(request, followup_paging.TeamFilter)
    conds = followup_paging.where(ctx, since=f.since, until=f.until, status=f.status,
                                  discipline=f.discipline)
    items, total = await followup_paging.page_follow_ups(ctx, p, "team", conds, PAGE_SIZE,
                                                         (f.page - 1) * PAGE_SIZE)
    page = page_of(f.page, total)
    if page.number != f.page:  # past the end: the last page
        items, total = await followup_paging.page_follow_ups(ctx, p, "team", conds,
                                                             PAGE_SIZE, page.offset)
    people = [u for u in await accounts.list_users(ctx)
              if u.team == p.team and u.active and u.role in SUPPORTERS]
    return render(request, "team.html", {
        "items": items, "page": page, "f": f, "qs": lambda **kw: query_string(f, **kw),
        "statuses": [("active", "To do (open or overdue)"), ("any", "Any"),
                     *[(v, LABELS.get(v, v)) for v in ("overdue", "open", "done",
                                                       "handed_off", "transferred")]],
        "disciplines": _choices(RecipientDiscipline),
        "people": people, "labels": LABELS, "transfers": ACTIVATIONS in request.app,
    })


async def follow_up_reassign(request: web.Request) -> web.Response:
    form = await form_body(request, ReassignForm)
    await followups.reassign(_ctx(request), principal(request), _uuid(request), form.owner,
                             form.due)
    raise _see_other("/team")


def _uuid(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NodeError(Code.NOT_FOUND, "no such record") from None


# --- admin ------------------------------------------------------------------------------

async def users_page(request: web.Request, error: NodeError | None = None) -> web.Response:
    return await account_pages.users_page(request, error)  # paged, filtered: node.accounts


async def user_create(request: web.Request) -> web.Response:
    try:
        form = await form_body(request, NewUserForm)
        await accounts.create_user(_ctx(request), principal(request), UserIn(
            username=form.username, password=form.password, role=form.role, team=form.team))
    except NodeError as exc:
        if exc.status in (409, 422):
            return await users_page(request, exc)
        raise
    raise _see_other("/admin/users")


async def user_change(request: web.Request) -> web.Response:
    try:
        form = await form_body(request, UserChangeForm)
        patch = UserPatch(role=form.role,
                          active=None if form.active is None else form.active == "yes")
        await accounts.update_user(_ctx(request), principal(request), _uuid(request), patch)
    except NodeError as exc:
        if exc.status in (409, 422):
            return await users_page(request, exc)
        raise
    raise _see_other("/admin/users")


async def user_unlock(request: web.Request) -> web.Response:
    await accounts.unlock_login(_ctx(request), request.app[THROTTLE], principal(request),
                                _uuid(request))
    raise _see_other("/admin/users")


# --- leadership -------------------------------------------------------------------------

async def leadership(request: web.Request) -> web.Response:
    rep = await report.agency_report(_ctx(request), 12)
    t = rep.totals
    charts = {
        "months": month_bars([(m.month, m.encounters) for m in rep.months],
                             "Encounters per month"),
        "intervention": hbars([(LABELS[k.value], v) for k, v in t.by_intervention.items()],
                              "By intervention"),
        "discipline": hbars([(LABELS[k.value], v) for k, v in t.by_discipline.items()],
                            "By discipline"),
        "referral": hbars([(LABELS.get(k, k), v) for k, v in t.by_referral.items()],
                          "Referrals"),
        "follow_ups": hbars([("Done on time", t.follow_ups.done_on_time),
                             ("Done (any time)", t.follow_ups.done),
                             ("Handed off", t.follow_ups.handed_off),
                             ("Open", t.follow_ups.open),
                             ("Overdue", t.follow_ups.overdue)], "Follow-ups"),
    }
    return render(request, "leadership.html", {"report": rep, "charts": charts})


def setup(app: web.Application) -> None:
    add_routes(app, [
        Route("GET", "/", home, "page.home", ALL_ROLES, "Home"),
        Route("GET", "/login", LOGIN.get, "page.login", None, "Log in"),
        Route("GET", "/favicon.ico", favicon, "page.favicon", None, "Icon"),
        Route("POST", "/login", LOGIN.post, "page.login.post", None, "Log in", csrf=False),
        Route("POST", "/logout", LOGIN.logout, "page.logout", ALL_ROLES, "Log out"),
        Route("GET", "/encounters/new", encounter_new, "page.encounters.new", SUPPORTERS,
              "Log an encounter"),
        Route("POST", "/encounters", encounter_post, "page.encounters.post", SUPPORTERS,
              "Log an encounter"),
        Route("GET", "/encounters", encounter_list, "page.encounters", SUPPORTERS,
              "My encounters"),
        Route("GET", "/encounters/{id}", encounter_view, "page.encounter", SUPPORTERS,
              "One encounter"),
        Route("GET", "/follow-ups", follow_up_list, "page.follow_ups", SUPPORTERS,
              "My follow-ups"),
        Route("POST", "/follow-ups/{id}/complete", follow_up_complete,
              "page.follow_ups.complete", SUPPORTERS, "Complete a follow-up"),
        Route("POST", "/follow-ups/{id}/reassign", follow_up_reassign,
              "page.follow_ups.reassign", COORDINATOR, "Reassign a follow-up"),
        Route("GET", "/team", team_view, "page.team", COORDINATOR, "Team follow-ups"),
        Route("GET", "/admin/users", users_page, "page.admin.users", ADMIN, "Users"),
        Route("POST", "/admin/users", user_create, "page.admin.users.create", ADMIN,
              "Create a user"),
        Route("POST", "/admin/users/{id}", user_change, "page.admin.users.change", ADMIN,
              "Change a user"),
        Route("POST", "/admin/users/{id}/unlock", user_unlock, "page.admin.users.unlock",
              ADMIN, "Clear a user's login delays"),
        Route("GET", "/leadership", leadership, "page.leadership", REPORT_READERS,
              "Agency report"),
    ])
    for item in (
        NavItem("Log", "/encounters/new", SUPPORTERS, 10),
        NavItem("Follow-ups", "/follow-ups", SUPPORTERS, 20),
        NavItem("Mine", "/encounters", SUPPORTERS, 30),
        NavItem("Team", "/team", COORDINATOR, 40),
        NavItem("Users", "/admin/users", ADMIN, 50),
        NavItem("Report", "/leadership", REPORT_READERS, 60),
    ):
        add_nav(app, item)
