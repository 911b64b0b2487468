"""The disclosures page for the role allowed to see them: coordinators, their team's only.

    GET  /disclosures            the team's disclosure records, newest first, paged with a
                                 count, and a short form to record one
    POST /disclosures            record one (CSRF); back to the list (303)

Reading the list is audited by the service (`disclosure.list` with the count) as the JSON
API's is; recording one writes `disclosure.create`. Other roles are refused by the route
table (403 `forbidden`, audited). A disclosure holds its category, date and whether
written notice was given, nothing else (DESIGN section 2).
"""

from __future__ import annotations

from datetime import date

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from node.core.context import NodeContext
from node.core.errors import NodeError
from node.core.routes import NavItem, Route
from node.core.schemas import DisclosureIn
from node.core.vocabulary import DisclosureCategory, Role
from node.records import disclosures
from node.records.encounter_paging import page_of, requested_page
from node.web.plumbing import form_body, principal, render

__all__ = ["NAV", "routes"]

COORDINATOR = frozenset({Role.COORDINATOR})
NAV = NavItem("Disclosures", "/disclosures", COORDINATOR, 47)
_LABELS = {"imminent_harm": "Imminent harm", "mandated_report": "Mandated report",
           "court_order": "Court order", "consent": "Consent"}


class DisclosureForm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    category: DisclosureCategory
    occurred_on: date
    notice_given: bool = False


async def disclosures_page(request: web.Request, error: NodeError | None = None) -> web.Response:
    ctx, p = NodeContext.of(request.app), principal(request)
    wanted = requested_page(request.query)
    items = await disclosures.list_disclosures(ctx, p)
    page = page_of(wanted, len(items))
    return render(request, "disclosures.html", {
        "items": items[page.offset:page.offset + page.size], "page": page, "error": error,
        "labels": _LABELS, "today": ctx.today().isoformat(),
        "categories": [(c.value, _LABELS[c.value]) for c in DisclosureCategory],
        "recorded": "recorded" in request.query,
    }, status=error.status if error else 200)


async def disclosure_post(request: web.Request) -> web.Response:
    ctx, p = NodeContext.of(request.app), principal(request)
    try:
        form = await form_body(request, DisclosureForm)
        await disclosures.create_disclosure(ctx, p, DisclosureIn(
            category=form.category, occurred_on=form.occurred_on,
            notice_given=form.notice_given))
    except NodeError as exc:
        if exc.status == 422:
            return await disclosures_page(request, exc)
        raise
    raise web.HTTPSeeOther("/disclosures?recorded=1")


def routes() -> list[Route]:
    return [
        Route("GET", "/disclosures", disclosures_page, "page.disclosures", COORDINATOR,
              "Disclosure records"),
        Route("POST", "/disclosures", disclosure_post, "page.disclosures.post", COORDINATOR,
              "Record a disclosure"),
    ]
