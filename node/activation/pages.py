"""Coordinator pages for interagency activation (mobile first, no JavaScript needed).

    /activations              incoming and outgoing activations, newest first, 50 a page
                              with the count, filtered by side, incident day, state and
                              affected discipline
    /activations/new          a request: incident, who is affected, what is needed, and a
                              target picker filtered by discipline and region
    /activations/{aid}        one activation: facts, timing warnings, each agency's state
                              and the actions that apply now (offer, accept, decline,
                              updates, cancel, close, hand-off)
    /activations/handoffs     follow-ups handed to this node (the note only for the
                              assigned coordinator) with a Done button that purges it

Forms post to the same services as the JSON API (same rules, same audit entries) and
redirect back (303) on success; a refusal re-renders the page with the stable code.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import ValidationError

from federation.field_errors import field_label
from node.activation import approval, ending, handoff, views
from node.activation import requester as requesting
from node.activation import responder as responding
from node.activation.api import activation_context
from node.activation.context import ActivationContext
from node.activation.db import Side
from node.activation.errors import ActivationCode, ActivationError
from node.activation.interstate_api import approve_activation, foreign_targets
from node.activation.list_filter import ActivationFilter, filtered
from node.activation.models import HandoffIn, OfferIn, RequestIn
from node.activation.states import allowed_events
from node.core import audit
from node.core.appkeys import DB, SETTINGS
from node.core.errors import NodeError
from node.core.routes import NavItem, Route, add_nav, add_routes
from node.core.vocabulary import Role
from node.records.encounter_paging import page_of, requested_page
from node.records.list_filters import query_string
from node.records.list_pages import query_model
from node.web.plumbing import principal, render, validation_error
from protocol.ids import is_msg_id
from protocol.vocabulary import (
    ActivationState,
    AgencyRole,
    CancelReason,
    DeclineReason,
    Discipline,
    IncidentType,
    Intervention,
    OfferCondition,
    Priority,
    Stage,
)

__all__ = ["label", "page_routes", "setup_pages"]

COORDINATOR = frozenset({Role.COORDINATOR})
_SPECIAL = {"dispatch_911": "911 dispatch", "ems": "EMS", "on_scene": "On scene",
            "eta": "ETA", "one_on_one": "One-on-one"}


def label(value: object) -> str:
    v = str(getattr(value, "value", value))
    return _SPECIAL.get(v, v.replace("_", " ").capitalize())


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(m.value, label(m)) for m in enum]


def _zone(request: web.Request) -> Any:
    return request.app[SETTINGS].zone


def _fmt(request: web.Request, ms: int) -> str:
    """A time in the node's zone (setting `timezone`), with the zone's abbreviation."""
    return datetime.fromtimestamp(ms / 1000, _zone(request)).strftime("%b %d %H:%M %Z")


def _local_input(request: web.Request, ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, _zone(request)).strftime("%Y-%m-%dT%H:%M")


def _parse_local(request: web.Request, value: str, field: str) -> int:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ActivationError(ActivationCode.INVALID_INPUT,
                              f"{field_label(field)}: choose a date and time.", field) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_zone(request))
    return int(dt.timestamp() * 1000)


def _common(request: web.Request) -> dict[str, Any]:
    names = {n.node_id: n.name for n in activation_context(request.app).directory.nodes()}
    return {"label": label, "fmt": lambda ms: _fmt(request, ms),
            "agency": lambda node_id: names.get(node_id, node_id),
            "zone_name": request.app[SETTINGS].timezone}


def _enum(enum: Any, value: str, field: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise ActivationError(ActivationCode.INVALID_INPUT,
                              f"{field_label(field)}: choose one of the offered options.",
                              field) from None


def _aid(request: web.Request) -> str:
    aid = request.match_info["activation_id"]
    if not is_msg_id(aid):
        raise ActivationError(ActivationCode.NOT_FOUND, "no such activation", "activation_id")
    return aid


def _requester_q(request: web.Request) -> str | None:
    r = request.query.get("requester")
    return r if r else None


# --- list -------------------------------------------------------------------------------


async def list_page(request: web.Request) -> web.Response:
    """Newest first, 50 a page with the count, filtered (`node.activation.list_filter`);
    each page keeps the two headings, asked of us and our requests."""
    ctx = activation_context(request.app)
    requested_page(request.query)
    f = query_model(request, ActivationFilter)
    async with request.app[DB].read() as conn:
        items = await filtered(conn, ctx, _zone(request), side=f.side, since=f.since,
                               until=f.until, status=f.status, discipline=f.discipline)
    page = page_of(f.page, len(items))
    shown = items[page.offset:page.offset + page.size]
    return render(request, "activations.html", {
        **_common(request), "page": page, "f": f, "qs": lambda **kw: query_string(f, **kw),
        "incoming": [a for a in shown if a.side == Side.IN.value],
        "outgoing": [a for a in shown if a.side == Side.OUT.value],
        "statuses": _choices(ActivationState), "disciplines": _choices(Discipline),
    })


# --- new request ------------------------------------------------------------------------


async def _new_page(request: web.Request, ctx: ActivationContext, values: dict[str, Any],
                    error: NodeError | None = None) -> web.Response:
    now = ctx.now()
    v: dict[str, Any] = {
        "incident_ref": "", "incident_type": IncidentType.OTHER.value,
        "event_at": _local_input(request, now - 3_600_000),
        "window_start": _local_input(request, now),
        "window_end": _local_input(request, now + 12 * 3_600_000),
        "interventions": [Intervention.DEFUSING.value, Intervention.ONE_ON_ONE.value],
        "peers_needed": "4", "reporting_location": "", "priority": Priority.URGENT.value,
        "contact_role": AgencyRole.COORDINATOR.value, "contact_phone": "", "approver": "",
        "expires_in": "4", "targets": [],
        **{f"affected_{d.value}": "" for d in Discipline},
    }
    v.update(values)
    discipline = request.query.get("discipline") or None
    region = request.query.get("region") or None
    if discipline is not None and discipline not in Discipline._value2member_map_:
        discipline = None
    targets = views.targets(ctx, discipline=discipline, region=region)
    regions = sorted({t.region for t in views.targets(ctx)})
    # Interstate: agencies of another member network (interstate_api.foreign_targets).
    networks = list(ctx.interstate.networks()) if ctx.interstate is not None else []
    network = request.query.get("network") or ""
    foreign: list[Any] = []
    foreign_error = None
    if network in networks:
        try:
            foreign, _ = foreign_targets(ctx, network, discipline, region)
        except ActivationError as exc:
            foreign_error = exc.message
    else:
        network = ""
    async with request.app[DB].read() as conn:
        approval_out = (await approval.read_policy(conn)).require_out if network else False
    return render(request, "activation_new.html", {
        **_common(request), "v": v, "error": error, "targets": targets,
        "networks": networks, "foreign_targets": foreign, "foreign_error": foreign_error,
        "approval_out": approval_out,
        "regions": regions, "filter": {"discipline": discipline or "", "region": region or "",
                                       "network": network},
        "disciplines": _choices(Discipline), "incident_types": _choices(IncidentType),
        "interventions": _choices(Intervention), "priorities": _choices(Priority),
        "roles": _choices(AgencyRole),
        "expiries": [("2", "2 hours"), ("4", "4 hours"), ("12", "12 hours"),
                     ("24", "1 day")],
    }, status=422 if error else 200)


async def new_page(request: web.Request) -> web.Response:
    return await _new_page(request, activation_context(request.app), {})


async def new_post(request: web.Request) -> web.Response:
    ctx = activation_context(request.app)
    p = principal(request)
    form = await request.post()
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    values["interventions"] = [str(x) for x in form.getall("interventions", [])]
    values["targets"] = [str(x) for x in form.getall("targets", [])]
    try:
        affected = {
            d.value: int(values[f"affected_{d.value}"])
            for d in Discipline
            if str(values.get(f"affected_{d.value}", "")).strip().isdigit()
            and int(values[f"affected_{d.value}"]) > 0
        }
        expires_h = values.get("expires_in", "4")
        if expires_h not in ("2", "4", "12", "24"):
            raise ActivationError(ActivationCode.INVALID_INPUT, "choose an expiry", "expires_in")
        try:
            data = RequestIn.model_validate({
                "incident_ref": values.get("incident_ref", ""),
                "incident_type": values.get("incident_type", ""),
                "event_ts": _parse_local(request, values.get("event_at", ""), "event_at"),
                "affected": affected,
                "interventions": values["interventions"],
                "window_start_ts": _parse_local(request, values.get("window_start", ""),
                                                "window_start"),
                "window_end_ts": _parse_local(request, values.get("window_end", ""),
                                              "window_end"),
                "peers_needed": values.get("peers_needed") or None,
                "reporting_location": values.get("reporting_location", "").strip().upper(),
                "priority": values.get("priority", ""),
                "contact": {"role": values.get("contact_role", ""),
                            "phone": values.get("contact_phone", "")},
                "approver": values.get("approver", ""),
                "expires_ts": ctx.now() + int(expires_h) * 3_600_000,
                "targets": values["targets"],
                "draft": values.get("action") == "draft",
            })
        except ValidationError as exc:
            raise validation_error(exc) from None
        async with request.app[DB].write() as conn:
            out = await requesting.create_request(conn, ctx, data, user_id=p.user_id)
            await audit.append(conn, ts=ctx.now(), action="activation.request", actor=p,
                               target_type="activation", target_id=out.activation_id,
                               detail={"state": out.state.value, "targets": len(out.legs)})
    except NodeError as exc:
        if exc.status in (409, 422):
            return await _new_page(request, ctx, values, exc)
        raise
    done = "draft=1" if data.draft else f"sent={len(out.legs)}"
    raise web.HTTPSeeOther(f"/activations/{out.activation_id}?{done}")


# --- one activation ---------------------------------------------------------------------


async def _detail(request: web.Request, error: NodeError | None = None) -> web.Response:
    ctx = activation_context(request.app)
    aid = _aid(request)
    async with request.app[DB].read() as conn:
        act = await views.get(conn, ctx, aid, _requester_q(request))
    legs = act.legs
    mine = legs[0] if act.side == Side.IN.value and legs else None
    return render(request, "activation.html", {
        **_common(request), "a": act, "mine": mine, "error": error,
        "notice": _notice(request.query), "events": {
            leg.responder: [e.value for e in allowed_events(leg.state)] for leg in legs},
        "disciplines": _choices(Discipline), "conditions": _choices(OfferCondition),
        "decline_reasons": _choices(DeclineReason), "cancel_reasons": _choices(CancelReason),
        "stages": _choices(Stage), "today": datetime.fromtimestamp(
            ctx.now() / 1000, _zone(request)).date().isoformat(),
        "due_default": (datetime.fromtimestamp(ctx.now() / 1000, _zone(request)).date()
                        + timedelta(days=3)).isoformat(),
        "qs": f"?requester={act.requester}" if act.side == Side.IN.value else "",
    }, status=error.status if error else 200)


def _notice(query: Any) -> str | None:
    """What the last action did, in words (after the redirect that follows a form)."""
    if query.get("draft"):
        return "Saved as a draft. Nothing was sent yet."
    sent = query.get("sent", "")
    if sent.isdigit():
        n = int(sent)
        return f"Request sent to {n} {'agency' if n == 1 else 'agencies'}."
    done = query.get("done", "")
    return _DONE.get(done)


_DONE = {
    "submit": "Request sent.", "accept": "Offer accepted. The agency has been told.",
    "decline_offer": "Offer declined. The agency has been told.",
    "decline": "Request declined. The requesting agency has been told.",
    "offer": "Offer sent to the requesting agency.", "update": "Update sent.",
    "cancel": "Cancelled. The other agencies have been told.",
    "close": "Activation closed.", "handoff": "Follow-up handed off.",
    "approved": "Approved.",
}


async def detail_page(request: web.Request) -> web.Response:
    return await _detail(request)


async def action_post(request: web.Request) -> web.Response:
    """One form endpoint per activation: `op` names the action."""
    ctx = activation_context(request.app)
    p = principal(request)
    aid = _aid(request)
    requester = _requester_q(request)
    form = await request.post()
    f = {k: v for k, v in form.items() if isinstance(v, str)}
    op = f.get("op", "")
    try:
        async with request.app[DB].write() as conn:
            if op == "approve":  # interstate (node.activation.approval); audits itself
                await approve_activation(conn, ctx, aid, requester, p)
                op = "approved"
            else:
                await _apply(conn, ctx, aid, requester, op, f, form, p.user_id)
                await audit.append(conn, ts=ctx.now(), action=f"activation.{op}"[:40],
                                   actor=p, target_type="activation", target_id=aid,
                                   detail={})
    except ValidationError as exc:
        return await _detail(request, validation_error(exc))
    except NodeError as exc:
        if exc.status in (403, 404, 409, 422):
            return await _detail(request, exc)
        raise
    query = urlencode({**({"requester": requester} if requester else {}),
                       "done": op if op in _DONE else ""})
    raise web.HTTPSeeOther(f"/activations/{aid}?{query}")


async def _apply(conn: Any, ctx: ActivationContext, aid: str, requester: str | None, op: str,
                 f: dict[str, str], form: Any, user_id: uuid.UUID) -> None:
    if op == "submit":
        await requesting.submit(conn, ctx, aid)
    elif op == "accept":
        await requesting.accept_offer(conn, ctx, aid, f.get("offer_msg_id", ""))
    elif op == "decline_offer":
        await requesting.decline_offer(conn, ctx, aid, f.get("responder", ""),
                                       _enum(DeclineReason, f.get("reason", ""), "reason"))
    elif op == "decline":
        reason = _enum(DeclineReason, f.get("reason", ""), "reason")
        await responding.decline_request(conn, ctx, aid, reason, requester=requester)
    elif op == "offer":
        counts = {d.value: int(f[f"offer_{d.value}"]) for d in Discipline
                  if f.get(f"offer_{d.value}", "").isdigit() and int(f[f"offer_{d.value}"]) > 0}
        offer = OfferIn.model_validate({
            "disciplines": counts, "eta_minutes": f.get("eta_minutes") or None,
            "conditions": [str(c) for c in form.getall("conditions", [])],
        })
        await responding.make_offer(conn, ctx, aid, offer, requester=requester, user_id=user_id)
    elif op == "update":
        stage = _enum(Stage, f.get("stage", ""), "stage")
        await responding.send_update(conn, ctx, aid, stage, requester=requester)
    elif op == "cancel":
        await ending.cancel(conn, ctx, aid, _enum(CancelReason, f.get("reason", ""), "reason"),
                         requester=requester, responder=f.get("responder") or None)
    elif op == "close":
        await ending.close(conn, ctx, aid, requester=requester)
    elif op == "handoff":
        data = HandoffIn.model_validate({
            "to": f.get("to", ""), "due": f.get("due", ""),
            "discipline": f.get("discipline", ""), "contact_note": f.get("contact_note", ""),
        })
        await handoff.send_handoff(conn, ctx, aid, data, requester=requester)
    else:
        raise ActivationError(ActivationCode.INVALID_INPUT, "unknown action", "op")


# --- hand-offs --------------------------------------------------------------------------


async def handoffs_page(request: web.Request, error: NodeError | None = None) -> web.Response:
    ctx = activation_context(request.app)
    p = principal(request)
    async with request.app[DB].write() as conn:
        items = await handoff.handoff_inbox(conn, ctx, p.user_id)
        for h in items:
            if h.contact_note is not None:
                await audit.append(conn, ts=ctx.now(), action="handoff.read", actor=p,
                                   target_type="handoff", target_id=h.id, detail={})
    return render(request, "activation_handoffs.html", {
        **_common(request), "items": items, "error": error, "me_id": str(p.user_id),
    }, status=error.status if error else 200)


async def handoff_done(request: web.Request) -> web.Response:
    ctx = activation_context(request.app)
    p = principal(request)
    try:
        hid = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise ActivationError(ActivationCode.NOT_FOUND, "no such hand-off", "id") from None
    try:
        async with request.app[DB].write() as conn:
            await handoff.complete(conn, ctx, hid, p.user_id)
            await audit.append(conn, ts=ctx.now(), action="handoff.complete", actor=p,
                               target_type="handoff", target_id=hid, detail={})
    except NodeError as exc:
        return await handoffs_page(request, exc)
    raise web.HTTPSeeOther("/activations/handoffs")


def page_routes() -> list[Route]:
    c = COORDINATOR
    return [
        Route("GET", "/activations", list_page, "page.activations", c, "Activations"),
        Route("GET", "/activations/new", new_page, "page.activations.new", c,
              "Request peer support"),
        Route("POST", "/activations", new_post, "page.activations.post", c,
              "Request peer support"),
        Route("GET", "/activations/handoffs", handoffs_page, "page.activations.handoffs", c,
              "Follow-up hand-offs"),
        Route("POST", "/activations/handoffs/{id}/done", handoff_done,
              "page.activations.handoffs.done", c, "Complete a hand-off"),
        Route("GET", "/activations/{activation_id}", detail_page, "page.activation", c,
              "One activation"),
        Route("POST", "/activations/{activation_id}", action_post, "page.activation.post", c,
              "Act on an activation"),
    ]


def setup_pages(app: web.Application) -> None:
    add_routes(app, page_routes())
    add_nav(app, NavItem("Activations", "/activations", COORDINATOR, 45))
    add_nav(app, NavItem("Hand-offs", "/activations/handoffs", COORDINATOR, 46))
