"""Amending an encounter over the JSON API and with a phone-sized form.

    POST /api/v1/encounters/{id}/amendments   the fields to correct (`EncounterAmendIn`)
    GET  /encounters/{id}/amend               the form, filled with the current values
    POST /encounters/{id}/amend               the form (CSRF), back to the encounter (303)

Both call `node.records.amendments.amend_encounter` (same rules, same audit entry). The
form sends every field; the handler keeps only those that differ from what is stored (the
time compared to the minute the form shows), so an untouched field is never "amended". A
refusal re-renders the form with the stable code; nothing is stored.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from node.core.context import NodeContext
from node.core.errors import Code, NodeError
from node.core.routes import Route
from node.core.schemas import EncounterOut, IncidentRef, RecipientInput
from node.core.vocabulary import (
    ActivationType,
    DurationBucket,
    Intervention,
    RecipientCategory,
    RecipientDiscipline,
    Referral,
    Role,
    Topic,
)
from node.records import encounters
from node.records.amendment_models import AmendmentResult, EncounterAmendIn
from node.records.amendments import amend_encounter
from node.web.pages import LABELS
from node.web.plumbing import form_body, json_body, principal, render, validation_error

__all__ = ["AmendForm", "routes"]

SUPPORTERS = frozenset({Role.PEER_SUPPORTER, Role.COORDINATOR})


class AmendForm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    occurred_at: datetime  # datetime-local, in the node's time zone
    duration_bucket: DurationBucket
    activation_type: ActivationType
    intervention: Intervention
    recipient_discipline: RecipientDiscipline
    recipient_category: RecipientCategory
    recipient: RecipientInput | None = None  # blank: unchanged
    topics: list[Topic] = []
    referral: Referral | Literal["none"] = "none"
    incident_ref: IncidentRef | None = None
    notice_given: bool = False
    supporter_was_witness: bool = False


def _eid(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NodeError(Code.NOT_FOUND, "no such encounter") from None


async def api_amend(request: web.Request) -> web.Response:
    data = await json_body(request, EncounterAmendIn)
    out = await amend_encounter(NodeContext.of(request.app), principal(request), _eid(request),
                                data)
    return web.Response(body=out.model_dump_json().encode(), status=201,
                        content_type="application/json")


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(m.value, LABELS.get(m.value, m.value)) for m in enum]


def _values(e: EncounterOut, ctx: NodeContext) -> dict[str, Any]:
    return {
        "occurred_at": e.occurred_at.astimezone(ctx.zone).strftime("%Y-%m-%dT%H:%M"),
        "duration_bucket": e.duration_bucket.value, "activation_type": e.activation_type.value,
        "intervention": e.intervention.value,
        "recipient_discipline": e.recipient_discipline.value,
        "recipient_category": e.recipient_category.value,
        "topics": [t.value for t in e.topics],
        "referral": e.referral.value if e.referral else "none",
        "incident_ref": e.incident_ref or "", "notice_given": e.notice_given,
        "supporter_was_witness": e.supporter_was_witness,
    }


def _form_page(request: web.Request, e: EncounterOut, values: dict[str, Any],
               error: NodeError | None = None) -> web.Response:
    return render(request, "encounter_amend.html", {
        "e": e, "v": values, "error": error, "labels": LABELS,
        "durations": _choices(DurationBucket), "activations": _choices(ActivationType),
        "interventions": _choices(Intervention), "disciplines": _choices(RecipientDiscipline),
        "categories": _choices(RecipientCategory), "topics": _choices(Topic),
        "referrals": [("none", "None"), *_choices(Referral)],
    }, status=error.status if error else 200)


async def amend_page(request: web.Request) -> web.Response:
    ctx = NodeContext.of(request.app)
    e = await encounters.get_encounter(ctx, principal(request), _eid(request))
    return _form_page(request, e, _values(e, ctx))


def _changes(form: AmendForm, e: EncounterOut, ctx: NodeContext) -> dict[str, Any]:
    """The form's fields that differ from the stored encounter."""
    occurred = form.occurred_at
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=ctx.zone)
    shown = e.occurred_at.astimezone(ctx.zone).replace(second=0, microsecond=0)
    sent: dict[str, Any] = {
        "duration_bucket": form.duration_bucket, "activation_type": form.activation_type,
        "intervention": form.intervention, "recipient_discipline": form.recipient_discipline,
        "recipient_category": form.recipient_category, "topics": set(form.topics),
        "referral": None if form.referral == "none" else Referral(form.referral),
        "incident_ref": form.incident_ref, "notice_given": form.notice_given,
        "supporter_was_witness": form.supporter_was_witness,
    }
    out = {k: v for k, v in sent.items()
           if v != (set(e.topics) if k == "topics" else getattr(e, k))}
    if occurred != shown:
        out["occurred_at"] = occurred
    if form.recipient is not None:
        out["recipient"] = form.recipient
    return out


async def amend_post(request: web.Request) -> web.Response:
    ctx, p, eid = NodeContext.of(request.app), principal(request), _eid(request)
    e = await encounters.get_encounter(ctx, p, eid)
    raw = await request.post()
    values = _values(e, ctx)
    values.update({k: v for k, v in raw.items() if isinstance(v, str) and k not in (
        "csrf", "recipient", "topics")})
    values["topics"] = [v for v in raw.getall("topics", []) if isinstance(v, str)]
    values["notice_given"] = raw.get("notice_given") == "on"
    values["supporter_was_witness"] = raw.get("supporter_was_witness") == "on"
    try:
        form = await form_body(request, AmendForm, lists=("topics",))
        try:
            data = EncounterAmendIn.model_validate(_changes(form, e, ctx), strict=False)
        except ValidationError as exc:
            raise validation_error(exc) from None
        await amend_encounter(ctx, p, eid, data)
    except NodeError as exc:
        if exc.status in (403, 409, 422):
            return _form_page(request, e, values, exc)
        raise
    raise web.HTTPSeeOther(f"/encounters/{eid}?amended=1")


def routes() -> list[Route]:
    return [
        Route("POST", "/api/v1/encounters/{id}/amendments", api_amend,
              "api.encounters.amend", SUPPORTERS,
              "Amend an encounter (its creator or their coordinator; audited)",
              body=EncounterAmendIn, response=AmendmentResult, status=201,
              tags=("encounters",)),
        Route("GET", "/encounters/{id}/amend", amend_page, "page.encounter.amend", SUPPORTERS,
              "Correct an encounter"),
        Route("POST", "/encounters/{id}/amend", amend_post, "page.encounter.amend.post",
              SUPPORTERS, "Correct an encounter"),
    ]

